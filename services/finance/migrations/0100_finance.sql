-- One receivable per customer order: what the customer owes, under which
-- terms, and the cost budget the ledger is compared with.
CREATE TABLE receivables (
    order_id             TEXT PRIMARY KEY,
    customer             TEXT NOT NULL,
    total_minor          BIGINT NOT NULL CHECK (total_minor > 0),
    currency             TEXT NOT NULL,
    payment_terms        TEXT NOT NULL,
    cost_budget_minor    BIGINT NOT NULL CHECK (cost_budget_minor >= 0),
    status               TEXT NOT NULL CHECK (status IN ('open', 'paid', 'cancelled')),
    opened_on            DATE NOT NULL,
    deposit_received_on  DATE,
    paid_in_full_on      DATE,
    -- Whether the ledger is over budget now; CostOverrun is emitted when this
    -- flips to true, so once per crossing.
    over_budget          BOOLEAN NOT NULL DEFAULT false,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The parsed terms priced against the total; amounts sum to total_minor.
CREATE TABLE installments (
    order_id      TEXT NOT NULL REFERENCES receivables (order_id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('deposit', 'balance')),
    trigger       TEXT NOT NULL,
    share_bp      INTEGER NOT NULL CHECK (share_bp > 0 AND share_bp <= 10000),
    amount_minor  BIGINT NOT NULL CHECK (amount_minor >= 0),
    due_days      INTEGER NOT NULL CHECK (due_days >= 0),
    PRIMARY KEY (order_id, seq)
);

-- Optional split of the cost budget by category.
CREATE TABLE cost_budget_lines (
    order_id      TEXT NOT NULL REFERENCES receivables (order_id) ON DELETE CASCADE,
    category      TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (order_id, category)
);

-- Invoice numbers run per calendar year (INV-2026-000123); the row lock of
-- the upsert serialises concurrent issuers.
CREATE TABLE invoice_numbers (
    year         INTEGER PRIMARY KEY,
    last_number  BIGINT NOT NULL
);

CREATE TABLE invoices (
    invoice_id       TEXT PRIMARY KEY,
    seq              BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    order_id         TEXT NOT NULL REFERENCES receivables (order_id),
    installment_seq  INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    trigger          TEXT NOT NULL,
    amount_minor     BIGINT NOT NULL CHECK (amount_minor > 0),
    paid_minor       BIGINT NOT NULL DEFAULT 0 CHECK (paid_minor >= 0 AND paid_minor <= amount_minor),
    currency         TEXT NOT NULL,
    issued_on        DATE NOT NULL,
    due_date         DATE NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('open', 'partially_paid', 'paid', 'void')),
    -- One invoice per installment: a repeated command finds it here.
    UNIQUE (order_id, installment_seq)
);
CREATE INDEX invoices_overdue ON invoices (due_date) WHERE status IN ('open', 'partially_paid');

-- The idempotency key is unique across all payments, so two concurrent calls
-- with one key cannot both record a payment.
CREATE TABLE payments (
    payment_id       UUID PRIMARY KEY,
    seq              BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    order_id         TEXT NOT NULL REFERENCES receivables (order_id),
    amount_minor     BIGINT NOT NULL CHECK (amount_minor > 0),
    currency         TEXT NOT NULL,
    received_on      DATE NOT NULL,
    reference        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    -- Received but owed by no issued invoice yet.
    unapplied_minor  BIGINT NOT NULL CHECK (unapplied_minor >= 0 AND unapplied_minor <= amount_minor),
    recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_order ON payments (order_id);

CREATE TABLE payment_allocations (
    payment_id    UUID NOT NULL REFERENCES payments (payment_id),
    invoice_id    TEXT NOT NULL REFERENCES invoices (invoice_id),
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    seq           BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (payment_id, invoice_id)
);

-- A cancelled order, even one whose receivable never opened: a late
-- OpenReceivable must not open it again, and a repeated CancelReceivable
-- answers from here.
CREATE TABLE receivable_cancellations (
    order_id         TEXT PRIMARY KEY,
    reason           TEXT NOT NULL,
    invoices_voided  INTEGER NOT NULL,
    refund_minor     BIGINT NOT NULL CHECK (refund_minor >= 0),
    cancelled_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Labour rate per work centre, read when a completed work order is booked
-- (a later change does not rewrite booked entries).
CREATE TABLE labour_rates (
    work_centre          TEXT PRIMARY KEY,
    currency             TEXT NOT NULL,
    rate_minor_per_hour  BIGINT NOT NULL CHECK (rate_minor_per_hour >= 0),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The cost ledger. No foreign key to receivables: costs may be booked before
-- the receivable opens and belong to the order all the same. Keyed by the
-- booking event and its line, so an event is never booked twice.
CREATE TABLE cost_entries (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      TEXT NOT NULL,
    line          INTEGER NOT NULL,
    order_id      TEXT NOT NULL,
    category      TEXT NOT NULL,
    description   TEXT NOT NULL,
    -- NULL with a warning when nothing could be costed.
    amount_minor  BIGINT CHECK (amount_minor >= 0),
    currency      TEXT,
    warning       TEXT,
    booked_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (event_id, line),
    CHECK ((amount_minor IS NULL) = (currency IS NULL))
);
CREATE INDEX cost_entries_order ON cost_entries (order_id);
