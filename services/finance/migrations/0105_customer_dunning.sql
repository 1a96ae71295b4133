-- The customer's own dunning schedule for this receivable (days after an
-- invoice's due date, strictly increasing), from the order's customer
-- rules; NULL: the deployment's schedule (dunning_schedule).
ALTER TABLE receivables ADD COLUMN reminder_days INTEGER[];
