-- Shipping exceptions: re-bookings after a missed ETD, the chase of
-- bookings whose ETD passed without a shipped report, and carrier claims
-- for lost or damaged cargo.

-- `shipments` stays the order's current shipment (what the warehouse ships
-- and the carrier tracks); `revision` says which of its bookings that is.
ALTER TABLE shipments
    ADD COLUMN revision INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1);

-- Every booking an order had, by BookShipment revision. A re-booking
-- cancels the earlier booking here instead of overwriting it, so what was
-- booked, when, and how it ended stays on record.
CREATE TABLE bookings (
    order_id              TEXT NOT NULL,
    revision              INTEGER NOT NULL CHECK (revision >= 1),
    booking_reference     TEXT NOT NULL UNIQUE,
    lane_code             TEXT NOT NULL,
    carrier               TEXT NOT NULL,
    mode                  TEXT NOT NULL,
    ready_date            DATE NOT NULL,
    etd                   DATE NOT NULL,
    eta                   DATE NOT NULL,
    freight_cost_minor    BIGINT NOT NULL CHECK (freight_cost_minor >= 0),
    currency              TEXT NOT NULL,
    meets_requested_date  BOOLEAN NOT NULL,
    -- Shipped and delivered live on `shipments`; a booking is only ever
    -- open or cancelled (re-booked, or cancelled by the saga).
    status                TEXT NOT NULL CHECK (status IN ('booked', 'cancelled')),
    cancel_reason         TEXT,
    booked_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set in the transaction that wrote ShipmentLate: a booking is chased
    -- once, whatever happens to the worker afterwards.
    late_reported_at      TIMESTAMPTZ,
    days_late             INTEGER CHECK (days_late > 0),
    PRIMARY KEY (order_id, revision)
);

-- The chasing worker's scan: open, unreported bookings by ETD.
CREATE INDEX bookings_to_chase ON bookings (etd)
    WHERE status = 'booked' AND late_reported_at IS NULL;

-- Bookings made before this migration are each order's first.
INSERT INTO bookings (order_id, revision, booking_reference, lane_code, carrier, mode,
    ready_date, etd, eta, freight_cost_minor, currency, meets_requested_date, status,
    cancel_reason, booked_at)
SELECT order_id, 1, booking_reference, lane_code, carrier, mode, ready_date, etd, eta,
    freight_cost_minor, currency, meets_requested_date,
    CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE 'booked' END,
    cancel_reason, booked_at
FROM shipments;

-- Claims against the carrier for cargo lost or damaged in transit. One per
-- order, booking and kind: the carrier reporting the same damage again adds
-- nothing.
CREATE TABLE cargo_claims (
    claim_id           TEXT PRIMARY KEY,
    order_id           TEXT NOT NULL,
    booking_reference  TEXT NOT NULL REFERENCES bookings (booking_reference),
    kind               TEXT NOT NULL CHECK (kind IN ('lost', 'damaged')),
    description        TEXT NOT NULL,
    -- Units affected; a report of the whole shipment is stored as the
    -- shipped quantity, so the claim states what is claimed.
    quantity           INTEGER NOT NULL CHECK (quantity > 0),
    -- When the carrier says it happened, and when logistics opened the claim.
    reported_at        TIMESTAMPTZ NOT NULL,
    opened_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (order_id, booking_reference, kind)
);
