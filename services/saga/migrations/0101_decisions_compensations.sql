-- Human decisions a saga waits for (clarifications, concessions, claims).
CREATE TABLE saga_decisions (
    decision_id  UUID PRIMARY KEY,
    order_id     TEXT NOT NULL REFERENCES sagas (order_id),
    step         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    question     TEXT NOT NULL,
    options      TEXT[] NOT NULL,
    opened_at    TIMESTAMPTZ NOT NULL,
    deadline     TIMESTAMPTZ NOT NULL,
    reminders    INTEGER NOT NULL DEFAULT 0,
    answer       TEXT,
    answered_by  TEXT,
    answered_at  TIMESTAMPTZ,
    comment      TEXT
);
CREATE INDEX saga_decisions_open ON saga_decisions (opened_at) WHERE answer IS NULL;
CREATE INDEX saga_decisions_order ON saga_decisions (order_id);

-- The compensation log: what a cancelled order's saga undid, in reverse
-- order of the steps that had taken effect.
CREATE TABLE saga_compensations (
    order_id     TEXT NOT NULL REFERENCES sagas (order_id),
    step         TEXT NOT NULL,
    action       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('sent', 'done', 'stalled')),
    attempts     INTEGER NOT NULL DEFAULT 1,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    detail       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (order_id, step)
);
