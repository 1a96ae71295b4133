-- Amendments of an order (AmendOrder), the confirmed revision (ConfirmOrder
-- sent again after an amendment) and the furthest phase an order reached
-- (the saga moves an amended order back to review and forward again).

-- One row per amendment, with the order before and after it. `number` is
-- 1, 2, ... per order, given under the order's row lock.
-- `client_request_id` makes AmendOrder idempotent per order: a retry finds
-- its amendment by (order_id, client_request_id) under the row lock, and the
-- unique key backs that rule if a path ever forgets the lock; the index on
-- the id alone lets AmendOrder refuse an id already used on another order.
-- `lines_before` / `lines_after` are JSON arrays of
-- {product, spec, quantity, unit_price_minor}, in line order: a snapshot,
-- while `order_lines` holds the order's current lines. `phase` holds the
-- gendan.v1.Phase number the order was in. `changes` are the sentences
-- announced ("BRKT-100 quantity 100 → 120"), stored so a retry and
-- ListAmendments return exactly what was announced.
CREATE TABLE order_amendments (
    amendment_id           UUID PRIMARY KEY,
    order_id               UUID NOT NULL REFERENCES orders (order_id),
    number                 INTEGER NOT NULL CHECK (number > 0),
    client_request_id      TEXT NOT NULL,
    reason                 TEXT NOT NULL,
    requested_by           TEXT NOT NULL,
    phase                  INTEGER NOT NULL CHECK (phase BETWEEN 1 AND 13),
    lines_before           JSONB NOT NULL,
    lines_after            JSONB NOT NULL,
    requested_date_before  DATE NOT NULL,
    requested_date_after   DATE NOT NULL,
    total_before_minor     BIGINT NOT NULL CHECK (total_before_minor >= 0),
    total_after_minor      BIGINT NOT NULL CHECK (total_after_minor >= 0),
    changes                TEXT[] NOT NULL,
    amended_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (order_id, number),
    UNIQUE (order_id, client_request_id)
);

CREATE INDEX order_amendments_by_request ON order_amendments (client_request_id);

-- confirmed_revision: the ConfirmOrder revision whose promised date the
-- order holds (0: not confirmed yet; an order confirmed before revisions
-- existed holds revision 1). furthest_phase: the furthest phase the order
-- ever reached, so a return to a phase after a loop back does not tell the
-- customer the same news twice.
ALTER TABLE orders
    ADD COLUMN confirmed_revision  INTEGER NOT NULL DEFAULT 0 CHECK (confirmed_revision >= 0),
    ADD COLUMN furthest_phase      INTEGER NOT NULL DEFAULT 1
                                   CHECK (furthest_phase BETWEEN 1 AND 13);

-- Existing rows, closed ones included: the read-only trigger is for the
-- service's write paths, not for filling a new column once.
ALTER TABLE orders DISABLE TRIGGER orders_closed_read_only;
UPDATE orders SET
    confirmed_revision = CASE WHEN confirmed_at IS NULL THEN 0 ELSE 1 END,
    furthest_phase = phase;
ALTER TABLE orders ENABLE TRIGGER orders_closed_read_only;
