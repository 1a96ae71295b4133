-- Inspection plans per product. AQLs are stored as the standard prints
-- them ("2.5", "0.65"), "0" for zero tolerance, so no float ever has to be
-- matched against a table column again.
CREATE TABLE inspection_plans (
    product            TEXT PRIMARY KEY,
    critical_aql       TEXT NOT NULL,
    major_aql          TEXT NOT NULL,
    minor_aql          TEXT NOT NULL,
    in_process_stages  TEXT[] NOT NULL DEFAULT '{}',
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The AQL of each material's incoming inspection (major defects).
CREATE TABLE incoming_plans (
    material    TEXT PRIMARY KEY,
    aql         TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Final inspections (of an order's finished goods) and incoming inspections
-- (of a received lot). sample_size is the number of units to draw: the
-- largest sample of the defect classes. cause_event_id and traceparent are
-- those of the message that opened it, so the result (recorded later over
-- gRPC) is announced in the same causal chain and trace.
CREATE TABLE inspections (
    inspection_id      UUID PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('final', 'incoming')),
    order_id           TEXT NOT NULL,
    purchase_order_id  TEXT NOT NULL DEFAULT '',
    material           TEXT NOT NULL DEFAULT '',
    lot                TEXT NOT NULL DEFAULT '',
    supplier           TEXT NOT NULL DEFAULT '',
    lot_size           BIGINT NOT NULL CHECK (lot_size > 0),
    code_letter        TEXT NOT NULL,
    sample_size        BIGINT NOT NULL CHECK (sample_size > 0 AND sample_size <= lot_size),
    status             TEXT NOT NULL CHECK (status IN ('open', 'passed', 'failed')),
    inspector          TEXT,
    sample_inspected   BIGINT,
    cause_event_id     TEXT NOT NULL DEFAULT '',
    traceparent        TEXT,
    opened_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    recorded_at        TIMESTAMPTZ,
    CHECK ((status = 'open') = (recorded_at IS NULL))
);

-- At most one open final inspection per order: a repeated request finds it.
CREATE UNIQUE INDEX inspections_one_open_final
    ON inspections (order_id) WHERE kind = 'final' AND status = 'open';
-- One incoming inspection per received lot, however often the receipt is announced.
CREATE UNIQUE INDEX inspections_one_per_lot
    ON inspections (purchase_order_id, material, lot) WHERE kind = 'incoming';
CREATE INDEX inspections_by_order ON inspections (order_id, opened_at);
CREATE INDEX inspections_open ON inspections (opened_at) WHERE status = 'open';

CREATE TABLE inspection_items (
    inspection_id  UUID NOT NULL REFERENCES inspections (inspection_id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    product        TEXT NOT NULL,
    quantity       BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (inspection_id, seq)
);

-- The sampling plan of each defect class, and its result once recorded.
CREATE TABLE inspection_classes (
    inspection_id     UUID NOT NULL REFERENCES inspections (inspection_id) ON DELETE CASCADE,
    defect_class      TEXT NOT NULL CHECK (defect_class IN ('critical', 'major', 'minor')),
    aql               TEXT NOT NULL,
    plan_code_letter  TEXT NOT NULL,
    sample_size       BIGINT NOT NULL,
    accept            BIGINT NOT NULL,
    reject            BIGINT NOT NULL CHECK (reject > accept),
    defects           BIGINT,
    passed            BOOLEAN,
    PRIMARY KEY (inspection_id, defect_class)
);

-- What the inspector found, as reported.
CREATE TABLE inspection_defects (
    inspection_id  UUID NOT NULL REFERENCES inspections (inspection_id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    defect_class   TEXT NOT NULL,
    count          BIGINT NOT NULL CHECK (count > 0),
    description    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (inspection_id, seq)
);

-- One nonconformance per failed inspection, open until dispositioned.
CREATE TABLE nonconformances (
    nonconformance_id  UUID PRIMARY KEY,
    inspection_id      UUID NOT NULL UNIQUE REFERENCES inspections (inspection_id),
    order_id           TEXT NOT NULL,
    summary            TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    disposition        TEXT CHECK (disposition IN ('rework', 'concession', 'scrap')),
    closed_by          TEXT,
    note               TEXT NOT NULL DEFAULT '',
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at          TIMESTAMPTZ,
    CHECK ((status = 'open') = (disposition IS NULL)),
    CHECK ((status = 'open') = (closed_at IS NULL))
);

CREATE INDEX nonconformances_by_order ON nonconformances (order_id, created_at);
CREATE INDEX nonconformances_open ON nonconformances (created_at) WHERE status = 'open';
