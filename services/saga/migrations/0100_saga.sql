-- One row per order's workflow. The order snapshot (encoded gendan.v1.Order)
-- is the saga's own copy of what it needs to build commands; it never reads
-- the orders service's tables.
CREATE TABLE sagas (
    order_id        TEXT PRIMARY KEY,
    phase           TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('running', 'stalled', 'completed', 'cancelled')),
    stalled_reason  TEXT,
    order_snapshot  BYTEA NOT NULL,
    requested_date  DATE NOT NULL,
    promised_date   DATE,
    projected_date  DATE,
    at_risk         BOOLEAN NOT NULL DEFAULT false,
    traceparent     TEXT,
    correlation_id  TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX sagas_stalled ON sagas (updated_at) WHERE status = 'stalled';

-- Status of each workflow step of each saga.
CREATE TABLE saga_steps (
    order_id     TEXT NOT NULL REFERENCES sagas (order_id),
    step         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'waiting', 'done', 'skipped', 'stalled')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    deadline     TIMESTAMPTZ,
    last_error   TEXT,
    trace_id     TEXT,
    PRIMARY KEY (order_id, step)
);

-- Durable timers: a step waiting on another service has a row here; the
-- timer worker claims due rows with SKIP LOCKED, so timers survive restarts
-- and several coordinators share them.
CREATE TABLE saga_timers (
    order_id  TEXT NOT NULL REFERENCES sagas (order_id),
    step      TEXT NOT NULL,
    fire_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, step)
);
CREATE INDEX saga_timers_due ON saga_timers (fire_at);

-- What the coordinator did and why, append-only.
CREATE TABLE saga_log (
    id        BIGSERIAL PRIMARY KEY,
    order_id  TEXT NOT NULL REFERENCES sagas (order_id),
    at        TIMESTAMPTZ NOT NULL,
    step      TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    trace_id  TEXT
);
CREATE INDEX saga_log_order ON saga_log (order_id, id);
