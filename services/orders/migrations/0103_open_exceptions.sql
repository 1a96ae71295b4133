-- The order's open exceptions as the tracking list shows them, kept from the
-- saga's ExceptionOpened / ExceptionClosed events.
CREATE TABLE order_exceptions (
    order_id      UUID NOT NULL REFERENCES orders (order_id),
    exception_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    -- Kept once closed, so an opening that arrives after its closing (a
    -- redelivery) cannot open it again.
    closed        BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (order_id, exception_id)
);
