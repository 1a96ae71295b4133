-- A cancelled order's work order is stopped, not deleted: what was made
-- stays on record.
ALTER TABLE work_orders DROP CONSTRAINT work_orders_status_check;
ALTER TABLE work_orders ADD CONSTRAINT work_orders_status_check
    CHECK (status IN ('planned', 'in_progress', 'completed', 'cancelled'));
ALTER TABLE work_orders ADD COLUMN cancelled_at TIMESTAMPTZ;
ALTER TABLE work_orders ADD COLUMN cancel_reason TEXT;
