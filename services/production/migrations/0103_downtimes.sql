-- How long a breakdown of the centre usually takes to repair: the downtime
-- planned for when the MES reports "equipment down" without an estimate.
ALTER TABLE work_centres ADD COLUMN typical_repair_hours DOUBLE PRECISION NOT NULL DEFAULT 24
    CHECK (typical_repair_hours > 0 AND typical_repair_hours <= 720);

-- Stoppages reported by the MES. A centre is down while it has one without
-- ended_at; planning treats it as unavailable from started_at for
-- expected_hours (the MES's estimate, else the typical repair time), or
-- until ended_at once the MES reports it up. The same report twice finds
-- its row (same centre and start, or the centre already down) and changes
-- nothing.
CREATE TABLE downtimes (
    downtime_id     BIGSERIAL PRIMARY KEY,
    work_centre     TEXT NOT NULL REFERENCES work_centres (code),
    reason          TEXT NOT NULL DEFAULT '',
    started_at      TIMESTAMPTZ NOT NULL,
    expected_hours  DOUBLE PRECISION NOT NULL CHECK (expected_hours >= 0),
    ended_at        TIMESTAMPTZ CHECK (ended_at >= started_at),
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (work_centre, started_at)
);

CREATE UNIQUE INDEX downtimes_one_open_per_centre ON downtimes (work_centre)
    WHERE ended_at IS NULL;

-- The work orders a downtime re-planned, in the order they were re-planned
-- (the oldest plan first, so it keeps first claim on capacity), with their
-- end before it and whether WorkOrderRescheduled announced the move: when
-- the centre is back up they are re-planned again in the same order, and
-- the announced ones are told it is over.
CREATE TABLE downtime_work_orders (
    downtime_id    BIGINT NOT NULL REFERENCES downtimes (downtime_id) ON DELETE CASCADE,
    work_order_id  UUID NOT NULL REFERENCES work_orders (work_order_id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    previous_end   DATE NOT NULL,
    announced      BOOLEAN NOT NULL,
    PRIMARY KEY (downtime_id, work_order_id)
);

-- The stages a downtime moved and where they started before it: the
-- earliest they may come back to when the centre is up early.
CREATE TABLE downtime_stages (
    downtime_id     BIGINT NOT NULL,
    work_order_id   UUID NOT NULL,
    product         TEXT NOT NULL,
    stage           TEXT NOT NULL,
    previous_start  DATE NOT NULL,
    PRIMARY KEY (downtime_id, work_order_id, product, stage),
    FOREIGN KEY (downtime_id, work_order_id)
        REFERENCES downtime_work_orders (downtime_id, work_order_id) ON DELETE CASCADE
);

-- Capacity booked per stage and day. capacity_bookings sums a work order's
-- stages per centre and day, which is what the scheduler needs; moving one
-- stage must give back exactly its own hours, so they are kept per stage
-- too, written with them.
CREATE TABLE stage_bookings (
    work_order_id  UUID NOT NULL,
    product        TEXT NOT NULL,
    stage          TEXT NOT NULL,
    day            DATE NOT NULL,
    hours          DOUBLE PRECISION NOT NULL CHECK (hours > 0),
    PRIMARY KEY (work_order_id, product, stage, day),
    FOREIGN KEY (work_order_id, product, stage)
        REFERENCES work_order_stages (work_order_id, product, stage) ON DELETE CASCADE
);

-- Work orders planned before this migration: a day booked on a centre by
-- exactly one of the work order's stages is that stage's. A day shared by
-- two stages stays unattributed: a re-plan then leaves it booked, which
-- wastes those hours rather than overbooking the centre.
INSERT INTO stage_bookings (work_order_id, product, stage, day, hours)
SELECT s.work_order_id, s.product, s.stage, b.day, b.hours
FROM work_order_stages s
JOIN capacity_bookings b
  ON b.work_order_id = s.work_order_id
 AND b.work_centre = s.work_centre
 AND b.day BETWEEN s.planned_start AND s.planned_end
WHERE s.hours > 0
  AND NOT EXISTS (
      SELECT 1 FROM work_order_stages o
      WHERE o.work_order_id = s.work_order_id
        AND o.work_centre = s.work_centre
        AND (o.product, o.stage) <> (s.product, s.stage)
        AND o.hours > 0
        AND b.day BETWEEN o.planned_start AND o.planned_end);
