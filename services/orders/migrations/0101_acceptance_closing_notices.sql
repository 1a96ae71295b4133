-- Acceptance, closing and customer notices.

-- The envelope payload of each timeline event, so the closing summary can
-- decode what happened (delivery date, costs, inspections) from the record
-- the orders service already keeps. Rows recorded before this column existed
-- keep NULL and are counted by type only. Adding a column rewrites no row, so
-- the append-only triggers are not involved.
ALTER TABLE timeline ADD COLUMN payload BYTEA;

-- accepted_*: the customer's acceptance (AcceptOrder), written once.
-- closed_at / summary: written once by CloseOrder; `summary` is the encoded
-- gendan.v1.OrderSummary, so a repeated CloseOrder and GetSummary return the
-- very message that was announced.
ALTER TABLE orders
    ADD COLUMN accepted_at      TIMESTAMPTZ,
    ADD COLUMN accepted_by      TEXT,
    ADD COLUMN acceptance_note  TEXT,
    ADD COLUMN closed_at        TIMESTAMPTZ,
    ADD COLUMN summary          BYTEA,
    ADD CONSTRAINT orders_closed_has_summary CHECK ((closed_at IS NULL) = (summary IS NULL));

-- A closed order is read-only. Every write path already skips closed orders
-- in its WHERE clause; this trigger turns a path that forgets into a loud
-- failure instead of a silently edited archive.
CREATE FUNCTION orders_closed_is_read_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'order % is closed and read-only (% refused)', OLD.order_id, TG_OP;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER orders_closed_read_only BEFORE UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_closed_is_read_only();

-- Notices to the customer, one per event that caused one (source_event_id
-- makes a redelivered event produce no second notice). The webhook dispatcher
-- claims due `pending` rows with SKIP LOCKED and moves them to `delivered`,
-- `failed` (gave up) or `not_configured` (no webhook URL set).
CREATE TABLE notices (
    seq                BIGSERIAL PRIMARY KEY,
    notice_id          UUID NOT NULL UNIQUE,
    order_id           UUID NOT NULL REFERENCES orders (order_id),
    source_event_id    TEXT NOT NULL UNIQUE,
    customer           TEXT NOT NULL,
    kind               TEXT NOT NULL,
    subject            TEXT NOT NULL,
    body               TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    delivery_status    TEXT NOT NULL DEFAULT 'pending'
                       CHECK (delivery_status IN ('pending', 'delivered', 'failed', 'not_configured')),
    delivery_attempts  INTEGER NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0),
    next_attempt_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error         TEXT NOT NULL DEFAULT '',
    delivered_at       TIMESTAMPTZ
);

CREATE INDEX notices_by_order ON notices (order_id, seq);
CREATE INDEX notices_due ON notices (next_attempt_at, seq) WHERE delivery_status = 'pending';
