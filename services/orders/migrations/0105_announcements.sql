-- OrderCreated is announced again, under its own event id, until the saga
-- shows it started the workflow (the order leaves phase received): a lost
-- announcement cannot strand an order. `announce_attempts` counts the
-- announcements after the first, `announced_at` is the last one.
ALTER TABLE orders
    ADD COLUMN announce_attempts INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN announced_at TIMESTAMPTZ;

-- The announcer's pass reads only orders still in phase received (1).
CREATE INDEX orders_unstarted ON orders (created_at) WHERE phase = 1;
