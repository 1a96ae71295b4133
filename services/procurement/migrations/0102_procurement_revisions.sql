-- Amended orders (DESIGN §2 "Amend"): ProcureMaterials carries a revision
-- of the order's items. The revision applied is kept per order, and each
-- revision's MaterialsOrdered as announced, so a re-sent command is
-- answered with the same fact (and the same event id) and an older one
-- changes nothing.

-- Orders procured before this migration applied their first revision.
ALTER TABLE procurements
    ADD COLUMN revision INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1);

-- The answer of each applied revision: the order's purchase orders, when
-- everything should be in, and for an amendment what changed, one line each
-- ("PO … reduced 103 → 100 m fabric", "reservation of 720 pcs button
-- released").
CREATE TABLE procurement_revisions (
    order_id             TEXT NOT NULL REFERENCES procurements (order_id),
    revision             INTEGER NOT NULL CHECK (revision >= 1),
    purchase_order_ids   UUID[] NOT NULL,
    expected_ready_date  DATE NOT NULL,
    adjustments          TEXT[] NOT NULL DEFAULT '{}',
    applied_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, revision)
);
