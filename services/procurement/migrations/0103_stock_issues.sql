-- The cost of material taken from stock: each applied revision's
-- MaterialsOrdered lists what it newly reserved from stock, per material,
-- valued at the price of the offer a purchase of it would use (0 with no
-- currency when nobody offers it). Kept beside the revision's answer so a
-- re-sent command announces the same issues, and finance, which books them
-- line by line, books none twice. Revisions applied before this migration
-- announced none and keep announcing none.
CREATE TABLE stock_issues (
    order_id        TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    material        TEXT NOT NULL,
    quantity_milli  BIGINT NOT NULL CHECK (quantity_milli > 0),
    -- The material's unit when it was issued ('' when it has none).
    unit            TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency        TEXT NOT NULL,
    PRIMARY KEY (order_id, revision, material),
    FOREIGN KEY (order_id, revision) REFERENCES procurement_revisions (order_id, revision),
    CHECK (currency <> '' OR amount_minor = 0)
);
