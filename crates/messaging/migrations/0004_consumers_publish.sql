-- A consumer publishes what its own run wrote to the outbox right after the
-- run commits, and deletes those rows in its next transaction. It marks
-- them with `relay_after`, a grace period: the relay takes them only if
-- they are still there by then (the consumer crashed between commit and
-- publish, or NATS refused). Rows without the mark (gRPC calls, timers)
-- wake the relay at once, as before. A consumer's transaction no longer
-- NOTIFYs, so its commit skips the lock every notifying commit of the
-- database queues on.
ALTER TABLE outbox ADD COLUMN relay_after TIMESTAMPTZ;

DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH ROW WHEN (NEW.relay_after IS NULL) EXECUTE FUNCTION outbox_notify();
