-- Chasing late suppliers (DESIGN §2 row 4): a purchase order must be
-- confirmed by its confirm-by date and received by its expected date; the
-- chase worker announces each miss once, and a late PO may be re-sourced
-- from another supplier.

-- The date the supplier should have confirmed by: the placed date plus the
-- configured number of days. Orders placed before this migration get the
-- default of two days after they were created.
ALTER TABLE purchase_orders ADD COLUMN confirm_by DATE;
-- Purchase orders placed before chasing existed get two days from now, so
-- deploying this does not chase every old purchase order at once.
UPDATE purchase_orders
   SET confirm_by = GREATEST((created_at AT TIME ZONE 'UTC')::date + 2, CURRENT_DATE + 2);
ALTER TABLE purchase_orders ALTER COLUMN confirm_by SET NOT NULL;

-- A late PO cancelled by ResourceMaterials names the PO that replaced it:
-- the command's idempotency key (the same command again answers from it).
ALTER TABLE purchase_orders
    ADD COLUMN resourced_by UUID REFERENCES purchase_orders (po_id),
    ADD COLUMN cancel_reason TEXT;

-- One row per purchase order, kind of lateness and date missed: written
-- with the PurchaseOrderLate events in one transaction, so a miss is
-- announced once. The date is part of the key because a moved date (a
-- confirmed later ETA, an accepted delay) is a new promise that can be
-- missed again.
CREATE TABLE purchase_order_chases (
    po_id      UUID NOT NULL REFERENCES purchase_orders (po_id),
    lateness   TEXT NOT NULL CHECK (lateness IN ('unconfirmed', 'not_received')),
    due_date   DATE NOT NULL,
    days_late  INTEGER NOT NULL CHECK (days_late > 0),
    -- By the service's clock (tests drive it).
    chased_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (po_id, lateness, due_date)
);

-- The chase worker's scan: open POs in placing order.
CREATE INDEX purchase_orders_open_by_created ON purchase_orders (created_at)
    WHERE status IN ('open', 'confirmed');
