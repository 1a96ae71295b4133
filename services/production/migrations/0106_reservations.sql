-- Capacity reserved at review. A versioned capacity check books the hours
-- it answers with as a work order of kind 'reservation': its stages and
-- capacity_bookings are written like any plan's, so every later check,
-- plan and rework counts them, and two orders are never promised the same
-- hours. A reservation is held until hold_until: the order's next check
-- replaces it, PlanWorkOrder turns it into the production run's booking,
-- ReleaseCapacity (cancel) gives it back, and one whose hold lapses is
-- swept by the next booking.
ALTER TABLE work_orders DROP CONSTRAINT work_orders_kind_check;
ALTER TABLE work_orders ADD CONSTRAINT work_orders_kind_check
    CHECK (kind IN ('production', 'rework', 'reservation'));
ALTER TABLE work_orders ADD COLUMN hold_until DATE;

-- The sweep reads the live reservations whose hold has lapsed.
CREATE INDEX work_orders_live_reservations ON work_orders (hold_until)
    WHERE kind = 'reservation' AND status = 'planned';

-- Each versioned check's answer, kept so that a re-sent check of the same
-- revision answers the same fact (the same event id) and books nothing.
CREATE TABLE capacity_checks (
    order_id       TEXT NOT NULL,
    revision       INTEGER NOT NULL CHECK (revision >= 1),
    -- The reservation it booked; NULL when the answer was a problem.
    work_order_id  UUID REFERENCES work_orders (work_order_id),
    answer         BYTEA NOT NULL,
    checked_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, revision)
);
