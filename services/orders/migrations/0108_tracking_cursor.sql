-- WatchOrders follows the orders list as it changes: every change to an
-- order row records the transaction that made it (tracking_xid), and a
-- watcher reads the rows changed by transactions that committed since its
-- cursor. It reads only below the oldest transaction still running
-- (pg_snapshot_xmin), so a transaction that commits late is never skipped:
-- the cursor waits for it.

ALTER TABLE orders
    ADD COLUMN tracking_xid xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE FUNCTION orders_track_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tracking_xid := pg_current_xact_id();
    RETURN NEW;
END $$;

CREATE TRIGGER orders_track_change BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_track_change();

CREATE INDEX orders_by_tracking ON orders (tracking_xid, order_id);
