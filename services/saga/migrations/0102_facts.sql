-- Facts the workflow keeps from events (material date, whether a deposit
-- gates production, shipment dates...): a JSON object, so new phases add
-- facts without schema changes.
ALTER TABLE sagas ADD COLUMN facts JSONB NOT NULL DEFAULT '{}';
