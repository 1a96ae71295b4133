-- The cost ledger's closing figures, once per order: a re-sent
-- CloseCostLedger announces the stored figures again under the same event
-- id instead of a second, different closing.
CREATE TABLE cost_ledger_closings (
    order_id    TEXT PRIMARY KEY,
    closing     BYTEA NOT NULL,
    closed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
