-- Payment chasing: the dunning schedule, each invoice's dunning state,
-- due-date extensions, referral to collection with the customer's credit
-- hold, and refunds paid out after a cancellation.

-- The one dunning schedule (days after the due date on which an unpaid
-- invoice is reminded). No row means the default, 1, 7, 14. The service
-- checks the rules (1..=10 days, strictly increasing, 1..=365); the checks
-- here only keep a hand edit from storing something unusable.
CREATE TABLE dunning_schedule (
    singleton      BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    reminder_days  INTEGER[] NOT NULL
        CHECK (cardinality(reminder_days) BETWEEN 1 AND 10 AND 1 <= ALL (reminder_days)),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Where each invoice's dunning stands, stored with the reminder it caused
-- (same transaction as the outbox row) so a reminder is never sent twice.
-- reminders_sent is the number of the last reminder (numbers can skip after
-- an outage: only the latest due reminder is sent).
ALTER TABLE invoices
    ADD COLUMN reminders_sent    INTEGER NOT NULL DEFAULT 0 CHECK (reminders_sent >= 0),
    ADD COLUMN last_reminded_on  DATE,
    ADD COLUMN escalated_on      DATE;

-- Every move of an invoice's due date (ExtendPaymentDue), for the record.
CREATE TABLE payment_due_extensions (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id    TEXT NOT NULL REFERENCES invoices (invoice_id),
    order_id      TEXT NOT NULL,
    old_due_date  DATE NOT NULL,
    new_due_date  DATE NOT NULL,
    reason        TEXT NOT NULL,
    extended_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payment_due_extensions_order ON payment_due_extensions (order_id);

-- A receivable referred to collection stops being dunned by finance.
ALTER TABLE receivables DROP CONSTRAINT receivables_status_check;
ALTER TABLE receivables ADD CONSTRAINT receivables_status_check
    CHECK (status IN ('open', 'paid', 'cancelled', 'in_collection'));

-- One referral per order; a repeated ReferToCollection answers from here.
CREATE TABLE collection_referrals (
    order_id           TEXT PRIMARY KEY REFERENCES receivables (order_id),
    customer           TEXT NOT NULL,
    reason             TEXT NOT NULL,
    outstanding_minor  BIGINT NOT NULL CHECK (outstanding_minor >= 0),
    referred_on        DATE NOT NULL,
    referred_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Customers finance will not extend credit to: held since the first
-- referral (a later one does not move the date), until a person lifts it.
CREATE TABLE credit_holds (
    customer  TEXT PRIMARY KEY,
    since     DATE NOT NULL,
    reason    TEXT NOT NULL,
    -- The order whose referral put the customer on hold.
    order_id  TEXT NOT NULL
);

-- Money paid back to the customer (RecordRefund). The idempotency key is
-- unique, so two concurrent calls with one key cannot both pay out.
CREATE TABLE refunds (
    refund_id        UUID PRIMARY KEY,
    seq              BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    order_id         TEXT NOT NULL REFERENCES receivables (order_id),
    amount_minor     BIGINT NOT NULL CHECK (amount_minor > 0),
    currency         TEXT NOT NULL,
    paid_on          DATE NOT NULL,
    reference        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refunds_order ON refunds (order_id);
