-- The order's next open milestone (the earliest projected one not yet
-- done), kept with each calendar snapshot so the orders list shows it
-- without reading every milestone of every order.
ALTER TABLE orders
    ADD COLUMN next_milestone       TEXT NOT NULL DEFAULT '',
    ADD COLUMN next_milestone_date  DATE;
