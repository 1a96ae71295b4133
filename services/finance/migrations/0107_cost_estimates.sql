-- The review's cost estimates and the inspection rate they (and the ledger)
-- cost final inspections at.

-- One estimate per order revision (EstimateCosts), kept as the encoded
-- gendan.v1.CostEstimate its CostsEstimated carried: a re-sent command
-- answers with it again, GetCostEstimate reads the latest revision, and an
-- OpenReceivable without a budget takes its budget from it. The answer is a
-- fact whose event id derives from the order and revision
-- (`estimate:<revision>`, as every finance fact), so no event id is kept
-- here. An estimate that failed (a rate missing) is not stored: the
-- command sent again estimates again.
CREATE TABLE cost_estimates (
    order_id      TEXT NOT NULL,
    revision      INTEGER NOT NULL CHECK (revision >= 1),
    estimate      BYTEA NOT NULL,
    estimated_on  DATE NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, revision)
);

-- The cost of inspecting one sampled unit (SetInspectionRate). One row, as
-- the dunning schedule; no row: not set, and inspections are not costed.
CREATE TABLE inspection_rate (
    singleton            BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    currency             TEXT NOT NULL,
    rate_minor_per_unit  BIGINT NOT NULL CHECK (rate_minor_per_unit >= 0),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
