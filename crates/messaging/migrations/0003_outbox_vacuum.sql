-- The outbox is a queue: every row is deleted moments after it is written,
-- and the relay takes rows from the head of its primary key. Dead rows at
-- the head make every take scan past them (4 ms a take was measured with
-- 200 orders in flight, docs/perf.md), so the table is vacuumed after a
-- fixed number of changes rather than a fraction of its (tiny) size.
ALTER TABLE outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
