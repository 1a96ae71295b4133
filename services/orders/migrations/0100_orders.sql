-- The order record (the orders service's read model of its own orders), its
-- lines, the create-request ids that make CreateOrder idempotent, and the
-- append-only timeline.

-- `phase` holds the gendan.v1.Phase enum number: protobuf numbers are never
-- renumbered, and numeric order is workflow order, so "only move forward" is
-- a plain comparison in SQL.
CREATE TABLE orders (
    order_id                 UUID PRIMARY KEY,
    customer                 TEXT NOT NULL,
    currency                 TEXT NOT NULL,
    requested_delivery_date  DATE NOT NULL,
    incoterm                 TEXT NOT NULL,
    payment_terms            TEXT NOT NULL,
    export                   BOOLEAN NOT NULL,
    total_minor              BIGINT NOT NULL CHECK (total_minor >= 0),
    phase                    INTEGER NOT NULL CHECK (phase BETWEEN 1 AND 13),
    workflow_status          TEXT NOT NULL,
    projected_delivery_date  DATE,
    at_risk                  BOOLEAN NOT NULL DEFAULT false,
    promised_delivery_date   DATE,
    confirmed_at             TIMESTAMPTZ,
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL
);

-- ListOrders pages newest first by (created_at, order_id), optionally per
-- customer or phase; the at-risk board is a small subset.
CREATE INDEX orders_by_created ON orders (created_at DESC, order_id DESC);
CREATE INDEX orders_by_customer ON orders (customer, created_at DESC, order_id DESC);
CREATE INDEX orders_by_phase ON orders (phase, created_at DESC, order_id DESC);
CREATE INDEX orders_at_risk ON orders (created_at DESC, order_id DESC) WHERE at_risk;

CREATE TABLE order_lines (
    order_id          UUID NOT NULL REFERENCES orders (order_id),
    line_no           INTEGER NOT NULL,
    product           TEXT NOT NULL,
    spec              TEXT NOT NULL,
    quantity          BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_minor  BIGINT NOT NULL CHECK (unit_price_minor >= 0),
    PRIMARY KEY (order_id, line_no)
);

-- One row per CreateOrder request id. It is inserted first in the create
-- transaction, so a concurrent retry blocks on the unique key until the first
-- commits and then finds the order; the foreign key is checked at commit,
-- after the order row exists.
CREATE TABLE create_requests (
    client_request_id  TEXT PRIMARY KEY,
    order_id           UUID NOT NULL UNIQUE
                       REFERENCES orders (order_id) DEFERRABLE INITIALLY DEFERRED,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Everything that happened to an order, as reported by whoever did it.
-- Append-only: rows are never edited or removed (the triggers below make
-- that a rule, not a habit); a redelivered event is dropped by event_id.
CREATE TABLE timeline (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    order_id     UUID NOT NULL REFERENCES orders (order_id),
    type         TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    source       TEXT NOT NULL,
    summary      TEXT NOT NULL,
    trace_id     TEXT NOT NULL DEFAULT '',
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX timeline_by_order ON timeline (order_id, occurred_at, seq);

CREATE FUNCTION timeline_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the order timeline is append-only (% refused)', TG_OP;
END $$;

CREATE TRIGGER timeline_no_update BEFORE UPDATE OR DELETE ON timeline
    FOR EACH ROW EXECUTE FUNCTION timeline_is_append_only();

CREATE TRIGGER timeline_no_truncate BEFORE TRUNCATE ON timeline
    FOR EACH STATEMENT EXECUTE FUNCTION timeline_is_append_only();
