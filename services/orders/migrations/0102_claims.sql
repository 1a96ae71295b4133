-- Claims on delivered goods (RaiseClaim) and how each was resolved
-- (ResolveClaim).

-- `kind` and `resolution` hold gendan.v1.ClaimKind / ClaimResolution enum
-- numbers (never renumbered). The checks only refuse UNSPECIFIED (0): a kind
-- added to the proto later needs no migration, and the service validates
-- against the enum it was built with.
--
-- `client_request_id` makes RaiseClaim idempotent per order: a retry finds
-- its claim by (order_id, client_request_id) under the order's row lock, and
-- the unique key backs that rule if a path ever forgets the lock.
--
-- `open_claims_after` is how many claims of the order were still open when
-- this one was resolved: a repeated ResolveClaim re-announces the very
-- ClaimResolved it announced the first time (same event id, same payload).
CREATE TABLE claims (
    seq                BIGSERIAL PRIMARY KEY,
    claim_id           UUID NOT NULL UNIQUE,
    order_id           UUID NOT NULL REFERENCES orders (order_id),
    client_request_id  TEXT NOT NULL,
    kind               INTEGER NOT NULL CHECK (kind > 0),
    product            TEXT NOT NULL,
    quantity           BIGINT NOT NULL CHECK (quantity > 0),
    description        TEXT NOT NULL,
    evidence           TEXT[] NOT NULL DEFAULT '{}',
    raised_by          TEXT NOT NULL,
    raised_at          TIMESTAMPTZ NOT NULL,
    value_minor        BIGINT NOT NULL CHECK (value_minor >= 0),
    resolution         INTEGER CHECK (resolution > 0),
    resolution_note    TEXT,
    resolved_at        TIMESTAMPTZ,
    open_claims_after  INTEGER CHECK (open_claims_after >= 0),
    UNIQUE (order_id, client_request_id),
    CONSTRAINT claims_resolved_together CHECK (
        (resolution IS NULL) = (resolved_at IS NULL)
        AND (resolution IS NULL) = (resolution_note IS NULL)
        AND (resolution IS NULL) = (open_claims_after IS NULL)
    )
);

-- ListClaims reads an order's claims oldest first; AcceptOrder and
-- ResolveClaim count the open ones.
CREATE INDEX claims_by_order ON claims (order_id, seq);
CREATE INDEX claims_open ON claims (order_id) WHERE resolution IS NULL;
