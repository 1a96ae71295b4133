-- The order's time-and-action calendar as the saga last announced it
-- (MilestonesChanged), for GetMilestones. Each event carries the whole
-- calendar and a version raised by every re-projection, so the read model is
-- that snapshot: the order row keeps the version it holds, and a snapshot of
-- an older or equal version (late, reordered or redelivered) changes nothing.

-- calendar_version: the version of the snapshot held (0: none yet).
-- calendar_incomplete: what the calendar could not date yet, in words.
-- Adding columns with defaults rewrites no row, so the closed-order trigger
-- is not involved.
ALTER TABLE orders
    ADD COLUMN calendar_version     BIGINT NOT NULL DEFAULT 0 CHECK (calendar_version >= 0),
    ADD COLUMN calendar_incomplete  TEXT[] NOT NULL DEFAULT '{}';

-- One row per milestone of the snapshot held; a milestone the latest
-- snapshot no longer has is deleted. `position` is its place in the
-- snapshot (dependency order, 1 first), `kind` the gendan.v1.MilestoneKind
-- number (never renumbered; a kind added later needs no migration). Dates
-- are NULL when unknown (no plan yet, not happened yet). The status is not
-- stored: it depends on the day it is read.
CREATE TABLE order_milestones (
    order_id    UUID NOT NULL REFERENCES orders (order_id),
    key         TEXT NOT NULL,
    position    INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    subject     TEXT NOT NULL,
    label       TEXT NOT NULL,
    planned     DATE,
    projected   DATE,
    actual      DATE,
    -- The keys of the milestones it waits for.
    depends_on  TEXT[] NOT NULL,
    -- What decided its projection ("MaterialsDelayed PO-7", "actual", "today").
    moved_by    TEXT NOT NULL,
    PRIMARY KEY (order_id, key)
);
