-- Credit notes (IssueCreditNote): money the customer no longer owes, for a
-- resolved claim. An issued invoice is never edited: its amount stays, and
-- what a credit settled of it is kept beside what payments settled.

-- Settled by credit notes; paid_minor stays money received, so an invoice
-- is settled when paid and credited together reach its amount.
ALTER TABLE invoices
    ADD COLUMN credited_minor BIGINT NOT NULL DEFAULT 0 CHECK (credited_minor >= 0),
    ADD CONSTRAINT invoices_settled_check CHECK (paid_minor + credited_minor <= amount_minor);

-- Credit note numbers run per calendar year (CN-2026-000007), a series of
-- their own beside the invoices'; the row lock of the upsert serialises
-- concurrent issuers, so the series has no gaps.
CREATE TABLE credit_note_numbers (
    year         INTEGER PRIMARY KEY,
    last_number  BIGINT NOT NULL
);

CREATE TABLE credit_notes (
    credit_note_id     TEXT PRIMARY KEY,
    seq                BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    order_id           TEXT NOT NULL REFERENCES receivables (order_id),
    claim_id           TEXT NOT NULL,
    amount_minor       BIGINT NOT NULL CHECK (amount_minor > 0),
    currency           TEXT NOT NULL,
    reason             TEXT NOT NULL,
    issued_on          DATE NOT NULL,
    -- Not yet settling an invoice (none was unpaid, or the rest of the
    -- order is not invoiced yet); applied when the next invoice is issued.
    unapplied_minor    BIGINT NOT NULL CHECK (unapplied_minor >= 0 AND unapplied_minor <= amount_minor),
    -- What CreditNoteIssued said, so a repeated command answers the same.
    outstanding_minor  BIGINT NOT NULL CHECK (outstanding_minor >= 0),
    refund_due_minor   BIGINT NOT NULL CHECK (refund_due_minor >= 0),
    issued_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- One credit note per claim: a repeated command finds it here.
    UNIQUE (order_id, claim_id)
);

CREATE TABLE credit_note_allocations (
    credit_note_id  TEXT NOT NULL REFERENCES credit_notes (credit_note_id),
    invoice_id      TEXT NOT NULL REFERENCES invoices (invoice_id),
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    seq             BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (credit_note_id, invoice_id)
);
