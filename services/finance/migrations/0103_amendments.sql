-- Amended orders: OpenReceivable with revision 2, 3, ... carries the order's
-- new total. The schedule keeps its shares; an installment not invoiced yet
-- simply takes its new amount, and one already invoiced keeps its invoices
-- as issued: an additional invoice bills what the new total adds, a credit
-- note ("amendment:<revision>") takes off what it removes.

-- Every revision applied to a receivable, the opening one included, with
-- what its ReceivableOpened announced: the highest is the current one, the
-- lowest the one it was opened at.
CREATE TABLE receivable_revisions (
    order_id           TEXT NOT NULL REFERENCES receivables (order_id),
    revision           INTEGER NOT NULL CHECK (revision >= 1),
    total_minor        BIGINT NOT NULL CHECK (total_minor > 0),
    cost_budget_minor  BIGINT NOT NULL CHECK (cost_budget_minor >= 0),
    -- One line per additional invoice or credit note, as announced.
    adjustments        TEXT[] NOT NULL DEFAULT '{}',
    applied_on         DATE NOT NULL,
    applied_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, revision)
);

-- Receivables opened before revisions were kept were opened at revision 1.
INSERT INTO receivable_revisions (order_id, revision, total_minor, cost_budget_minor, applied_on)
    SELECT order_id, 1, total_minor, cost_budget_minor, opened_on FROM receivables;

-- An installment keeps its first invoice and may get one additional invoice
-- per revision that raised it (the revision is stored on it).
ALTER TABLE invoices ADD COLUMN amendment_revision INTEGER CHECK (amendment_revision > 1);
ALTER TABLE invoices DROP CONSTRAINT invoices_order_id_installment_seq_key;
CREATE UNIQUE INDEX invoices_first_of_installment ON invoices (order_id, installment_seq)
    WHERE amendment_revision IS NULL;
ALTER TABLE invoices ADD CONSTRAINT invoices_one_per_installment_and_revision
    UNIQUE (order_id, installment_seq, amendment_revision);

-- A credit note of an amendment is not a claim's: the new total already
-- leaves its amount out, so what the customer owes does not count it; it
-- only settles invoices issued for more.
ALTER TABLE credit_notes ADD COLUMN amendment_revision INTEGER CHECK (amendment_revision > 1);

-- What each revision settled on each installment already invoiced: more (an
-- additional invoice, or the first one of a deposit the old total priced at
-- nothing) or less (its part of the revision's one credit note).
CREATE TABLE receivable_adjustments (
    order_id         TEXT NOT NULL REFERENCES receivables (order_id),
    revision         INTEGER NOT NULL,
    installment_seq  INTEGER NOT NULL,
    amount_minor     BIGINT NOT NULL,
    invoice_id       TEXT REFERENCES invoices (invoice_id),
    credit_note_id   TEXT REFERENCES credit_notes (credit_note_id),
    PRIMARY KEY (order_id, revision, installment_seq),
    CHECK ((amount_minor > 0 AND invoice_id IS NOT NULL AND credit_note_id IS NULL)
        OR (amount_minor < 0 AND invoice_id IS NULL AND credit_note_id IS NOT NULL))
);
