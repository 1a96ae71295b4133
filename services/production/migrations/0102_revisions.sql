-- An order may have several work orders: the first production run
-- (revision 1), remakes after goods were scrapped (revisions 2, 3, ...) and
-- reworks of goods that failed final inspection (kind 'rework', numbered
-- 1, 2, ... on their own). Earlier ones stay on record, so the key is the
-- order with its kind and revision instead of the order alone.
ALTER TABLE work_orders ADD COLUMN kind TEXT NOT NULL DEFAULT 'production'
    CHECK (kind IN ('production', 'rework'));
ALTER TABLE work_orders ADD COLUMN revision INTEGER NOT NULL DEFAULT 1
    CHECK (revision >= 1);
-- Reworks only: quality's nonconformance being reworked, and why.
ALTER TABLE work_orders ADD COLUMN nonconformance_id TEXT;
ALTER TABLE work_orders ADD COLUMN rework_reason TEXT;

ALTER TABLE work_orders DROP CONSTRAINT work_orders_order_id_key;
-- Its leading order_id also serves every lookup of an order's work orders.
ALTER TABLE work_orders ADD CONSTRAINT work_orders_order_kind_revision_key
    UNIQUE (order_id, kind, revision);
