-- The order's open exceptions as the tracking list shows them, kept from the
-- saga's ExceptionOpened / ExceptionClosed events.
CREATE TABLE order_exceptions (
    order_id      UUID NOT NULL REFERENCES orders (order_id),
    exception_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    PRIMARY KEY (order_id, exception_id)
);
