-- A product's switching state reads its latest final inspections: walked
-- newest first through this index, the read stops after the few lots the
-- switching rules look at instead of aggregating the product's whole
-- history.
CREATE INDEX inspections_final_recent ON inspections (recorded_at DESC, inspection_id DESC)
    WHERE kind = 'final' AND revision = 1 AND status <> 'open';
