-- Exchange rates, and cost entries valued in the order currency with them.
-- A cost keeps its own amount and currency (what the supplier billed); the
-- value in the order currency is added beside it, at the rate in force on
-- its booking date, so the ledger compares like with like against the
-- budget.

-- Units of to_currency for one unit of from_currency, in force from
-- valid_from until the pair's next rate. Kept as rate x 10^10 (see fx.rs)
-- so valuing is integer arithmetic and "0.1408" stays exactly that. The
-- primary key also serves "the latest valid_from on or before a date".
CREATE TABLE exchange_rates (
    from_currency  TEXT NOT NULL,
    to_currency    TEXT NOT NULL,
    valid_from     DATE NOT NULL,
    rate_scaled    BIGINT NOT NULL CHECK (rate_scaled > 0),
    source         TEXT NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (from_currency, to_currency, valid_from),
    CHECK (from_currency <> to_currency)
);

-- order_amount_minor: the value in order_currency; NULL while it is not
-- valued (no receivable yet, or no rate on or before booked_on).
-- rate_scaled / rate_date: the rate used and the date it is in force from;
-- NULL when the entry is in the order currency itself.
-- booked_on: the date whose rate values the entry (the day the cost
-- happened, from the event).
ALTER TABLE cost_entries
    ADD COLUMN order_amount_minor BIGINT CHECK (order_amount_minor >= 0),
    ADD COLUMN rate_scaled BIGINT CHECK (rate_scaled > 0),
    ADD COLUMN rate_date DATE,
    ADD COLUMN order_currency TEXT,
    ADD COLUMN booked_on DATE NOT NULL DEFAULT CURRENT_DATE,
    ADD CONSTRAINT cost_entries_valued_check CHECK (
        (order_amount_minor IS NULL) = (order_currency IS NULL)
        AND (order_amount_minor IS NULL OR amount_minor IS NOT NULL)
        AND (rate_scaled IS NULL) = (rate_date IS NULL)
        AND (rate_scaled IS NULL OR order_amount_minor IS NOT NULL));

-- Entries booked before this migration: the day they were booked (in UTC,
-- as the service dates events). Those in their order's currency counted
-- in the actual cost until now and keep counting; the others were never
-- valued and wait for a rate like any new one.
UPDATE cost_entries SET booked_on = (booked_at AT TIME ZONE 'UTC')::date;
UPDATE cost_entries e SET order_amount_minor = e.amount_minor, order_currency = r.currency
    FROM receivables r
    WHERE r.order_id = e.order_id AND e.currency = r.currency AND e.amount_minor IS NOT NULL;

-- A new rate values the entries of its currencies that are still waiting.
CREATE INDEX cost_entries_unvalued ON cost_entries (currency)
    WHERE order_amount_minor IS NULL AND amount_minor IS NOT NULL;

-- Whether each budget category is over its plan now; CostOverrun names the
-- category when this flips to true, so once per crossing (the whole order's
-- flag is receivables.over_budget).
CREATE TABLE cost_category_flags (
    order_id  TEXT NOT NULL,
    category  TEXT NOT NULL,
    over      BOOLEAN NOT NULL,
    PRIMARY KEY (order_id, category)
);
