-- Loops: a step can run more than once (rework, re-inspection, remake).
-- `runs` is the revision its commands carry; `failures` counts failed
-- answers for the loop's limit.
ALTER TABLE saga_steps ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE saga_steps ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
-- A step that ran before this column existed ran once.
UPDATE saga_steps SET runs = 1 WHERE status <> 'pending';

-- The decision an exception waits for.
ALTER TABLE saga_decisions ADD COLUMN exception_id UUID;

-- The exception register: every exception of every order, opened to closed.
CREATE TABLE saga_exceptions (
    exception_id       UUID PRIMARY KEY,
    order_id           TEXT NOT NULL REFERENCES sagas (order_id),
    kind               TEXT NOT NULL,
    cause              TEXT NOT NULL,
    owner              TEXT NOT NULL,
    step               TEXT NOT NULL DEFAULT '',
    opened_at          TIMESTAMPTZ NOT NULL,
    deadline           TIMESTAMPTZ,
    projected_at_open  DATE,
    impact_days        INTEGER NOT NULL DEFAULT 0,
    decision_id        UUID,
    decision           TEXT,
    decided_by         TEXT,
    closed_at          TIMESTAMPTZ,
    resolution         TEXT
);
CREATE INDEX saga_exceptions_order ON saga_exceptions (order_id);
CREATE INDEX saga_exceptions_open ON saga_exceptions (opened_at DESC) WHERE closed_at IS NULL;
CREATE INDEX saga_exceptions_opened ON saga_exceptions (opened_at DESC);
