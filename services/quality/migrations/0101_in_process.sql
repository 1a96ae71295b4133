-- In-process inspections: a stage of the routing named in the product's
-- plan, opened from production's progress reports. product and stage say
-- which; they stay '' for final and incoming inspections.
ALTER TABLE inspections DROP CONSTRAINT inspections_kind_check;
ALTER TABLE inspections ADD CONSTRAINT inspections_kind_check
    CHECK (kind IN ('final', 'incoming', 'in_process'));
ALTER TABLE inspections ADD COLUMN product TEXT NOT NULL DEFAULT '';
ALTER TABLE inspections ADD COLUMN stage TEXT NOT NULL DEFAULT '';

-- One in-process inspection per order, product and stage, however many
-- progress reports the stage produces.
CREATE UNIQUE INDEX inspections_one_per_stage
    ON inspections (order_id, product, stage) WHERE kind = 'in_process';
