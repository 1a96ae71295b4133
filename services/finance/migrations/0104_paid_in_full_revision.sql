-- The receivable's revision when it was (last) paid in full: the key of
-- that OrderPaidInFull fact, so asking again (RestateFact) announces it
-- under the same event id. NULL for receivables paid before it was kept
-- (read as revision 1).
ALTER TABLE receivables ADD COLUMN paid_in_full_revision INTEGER;
