-- Packing specs per customer. Products packed differently from the default
-- are listed in packing_spec_products; UpsertPackingSpec replaces both.
CREATE TABLE packing_specs (
    customer                  TEXT PRIMARY KEY,
    default_units_per_carton  INTEGER NOT NULL CHECK (default_units_per_carton > 0),
    marks_template            TEXT NOT NULL,
    barcode_type              TEXT NOT NULL,
    max_gross_weight_kg       DOUBLE PRECISION NOT NULL CHECK (max_gross_weight_kg > 0),
    carton_tare_kg            DOUBLE PRECISION NOT NULL CHECK (carton_tare_kg >= 0),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE packing_spec_products (
    customer          TEXT NOT NULL REFERENCES packing_specs (customer) ON DELETE CASCADE,
    product           TEXT NOT NULL,
    units_per_carton  INTEGER NOT NULL CHECK (units_per_carton > 0),
    PRIMARY KEY (customer, product)
);

-- Product data for documents.
CREATE TABLE products (
    product             TEXT PRIMARY KEY,
    description         TEXT NOT NULL,
    hs_code             TEXT NOT NULL CHECK (hs_code ~ '^[0-9]{6,10}$'),
    unit_net_weight_kg  DOUBLE PRECISION NOT NULL CHECK (unit_net_weight_kg > 0),
    country_of_origin   TEXT NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE carrier_lanes (
    code               TEXT PRIMARY KEY,
    carrier            TEXT NOT NULL,
    mode               TEXT NOT NULL CHECK (mode IN ('sea', 'air', 'road')),
    departure_weekday  INTEGER NOT NULL CHECK (departure_weekday BETWEEN 1 AND 7),
    transit_days       INTEGER NOT NULL CHECK (transit_days >= 0),
    cutoff_days        INTEGER NOT NULL CHECK (cutoff_days >= 0),
    cost_basis         TEXT NOT NULL CHECK (cost_basis IN ('per_carton', 'per_kg')),
    rate_minor         BIGINT NOT NULL CHECK (rate_minor > 0),
    currency           TEXT NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One packing list per order; the spec's requirements are copied so a later
-- spec change does not rewrite a list already sent to the warehouse.
CREATE TABLE packing_lists (
    order_id             TEXT PRIMARY KEY,
    customer             TEXT NOT NULL,
    barcode_type         TEXT NOT NULL,
    max_gross_weight_kg  DOUBLE PRECISION NOT NULL,
    carton_tare_kg       DOUBLE PRECISION NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('prepared', 'checked', 'mismatch')),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE packing_list_cartons (
    order_id         TEXT NOT NULL REFERENCES packing_lists (order_id) ON DELETE CASCADE,
    carton_number    INTEGER NOT NULL CHECK (carton_number > 0),
    product          TEXT NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    marks            TEXT NOT NULL,
    net_weight_kg    DOUBLE PRECISION NOT NULL,
    gross_weight_kg  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (order_id, carton_number)
);

-- Every WMS packed report and what the check found, kept as the record.
CREATE TABLE packing_checks (
    id          BIGSERIAL PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES packing_lists (order_id) ON DELETE CASCADE,
    matches     BOOLEAN NOT NULL,
    mismatches  TEXT[] NOT NULL,
    packed      JSONB NOT NULL,
    checked_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX packing_checks_order ON packing_checks (order_id, id);

CREATE TABLE document_sets (
    order_id    TEXT PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('ready', 'rejected')),
    export      BOOLEAN NOT NULL,
    problems    TEXT[] NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    order_id  TEXT NOT NULL REFERENCES document_sets (order_id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    name      TEXT NOT NULL,
    -- JSON, not JSONB: the document keeps its fields in the order it was
    -- written, as a person reads it.
    content   JSON NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('ok', 'problems')),
    problems  TEXT[] NOT NULL,
    PRIMARY KEY (order_id, name)
);

CREATE TABLE shipments (
    order_id              TEXT PRIMARY KEY,
    status                TEXT NOT NULL CHECK (status IN ('booked', 'shipped', 'delivered', 'cancelled')),
    lane_code             TEXT NOT NULL,
    carrier               TEXT NOT NULL,
    mode                  TEXT NOT NULL,
    ready_date            DATE NOT NULL,
    etd                   DATE NOT NULL,
    eta                   DATE NOT NULL,
    booking_reference     TEXT NOT NULL UNIQUE,
    freight_cost_minor    BIGINT NOT NULL CHECK (freight_cost_minor >= 0),
    currency              TEXT NOT NULL,
    meets_requested_date  BOOLEAN NOT NULL,
    bill_of_lading        TEXT,
    shipped_on            DATE,
    delivered_on          DATE,
    proof_of_delivery     TEXT,
    cancel_reason         TEXT,
    booked_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE tracking_events (
    id        BIGSERIAL PRIMARY KEY,
    order_id  TEXT NOT NULL REFERENCES shipments (order_id) ON DELETE CASCADE,
    status    TEXT NOT NULL,
    location  TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX tracking_events_order ON tracking_events (order_id, at, id);
