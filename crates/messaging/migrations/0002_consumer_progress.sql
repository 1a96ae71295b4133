-- How far along its stream a consumer that keeps track has handled
-- messages (the highest stream sequence of a committed batch): a handler of
-- another consumer can wait until this one has seen what came before.
CREATE TABLE consumer_progress (
    consumer         TEXT PRIMARY KEY,
    stream_sequence  BIGINT NOT NULL
);
