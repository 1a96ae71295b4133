-- Work centres and their calendars. An empty working_weekdays means Monday
-- to Friday, the common case, so most rows need not spell it out.
CREATE TABLE work_centres (
    code              TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    hours_per_day     DOUBLE PRECISION NOT NULL CHECK (hours_per_day >= 0),
    working_weekdays  INTEGER[] NOT NULL DEFAULT '{}',
    closed_dates      DATE[] NOT NULL DEFAULT '{}',
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One routing per product; SetRouting replaces all its stages at once.
CREATE TABLE routings (
    product     TEXT PRIMARY KEY,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE routing_stages (
    product         TEXT NOT NULL REFERENCES routings (product) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    stage           TEXT NOT NULL,
    work_centre     TEXT NOT NULL REFERENCES work_centres (code),
    hours_per_unit  DOUBLE PRECISION NOT NULL CHECK (hours_per_unit >= 0),
    setup_hours     DOUBLE PRECISION NOT NULL CHECK (setup_hours >= 0),
    PRIMARY KEY (product, seq),
    UNIQUE (product, stage)
);

-- One work order per customer order. traceparent is the trace of the
-- PlanWorkOrder command, so MES events (which carry none) join the order's
-- trace.
CREATE TABLE work_orders (
    work_order_id  UUID PRIMARY KEY,
    order_id       TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('planned', 'in_progress', 'completed')),
    planned_start  DATE NOT NULL,
    planned_end    DATE NOT NULL,
    completed_on   DATE,
    traceparent    TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Stages copy the routing as it was when planned: a later routing change
-- must not rewrite the plan of a running order.
CREATE TABLE work_order_stages (
    work_order_id   UUID NOT NULL REFERENCES work_orders (work_order_id) ON DELETE CASCADE,
    product         TEXT NOT NULL,
    stage           TEXT NOT NULL,
    product_seq     INTEGER NOT NULL,
    stage_seq       INTEGER NOT NULL,
    work_centre     TEXT NOT NULL,
    quantity        BIGINT NOT NULL CHECK (quantity > 0),
    hours_per_unit  DOUBLE PRECISION NOT NULL,
    setup_hours     DOUBLE PRECISION NOT NULL,
    hours           DOUBLE PRECISION NOT NULL,
    planned_start   DATE NOT NULL,
    planned_end     DATE NOT NULL,
    actual_start    TIMESTAMPTZ,
    actual_end      TIMESTAMPTZ,
    good_quantity   BIGINT NOT NULL DEFAULT 0,
    scrap_quantity  BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'planned'
                    CHECK (status IN ('planned', 'running', 'completed')),
    PRIMARY KEY (work_order_id, product, stage)
);

-- Hours of each work centre taken by each work order, per day: what the
-- scheduler subtracts from the calendar when planning the next order.
CREATE TABLE capacity_bookings (
    work_centre    TEXT NOT NULL,
    day            DATE NOT NULL,
    work_order_id  UUID NOT NULL REFERENCES work_orders (work_order_id) ON DELETE CASCADE,
    hours          DOUBLE PRECISION NOT NULL CHECK (hours > 0),
    PRIMARY KEY (work_centre, day, work_order_id)
);

CREATE INDEX capacity_bookings_by_work_order ON capacity_bookings (work_order_id);

-- Equipment stoppages as reported by the MES, kept for availability figures.
CREATE TABLE equipment_events (
    id           BIGSERIAL PRIMARY KEY,
    work_centre  TEXT NOT NULL,
    down         BOOLEAN NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    at           TIMESTAMPTZ NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX equipment_events_by_centre ON equipment_events (work_centre, at);
