-- What a work order's completion announced: its good finished units and its
-- scrap. A completion announced again (the saga's RestateFact) carries these,
-- the same payload as the first time, even when a late MES count changed
-- the stages since, or when an amended run with nothing left to make
-- reported the amended quantity good. NULL while the work order is not
-- completed, and for those completed before this column existed (their
-- stages give the figures).
ALTER TABLE work_orders ADD COLUMN completed_good BIGINT CHECK (completed_good >= 0);
ALTER TABLE work_orders ADD COLUMN completed_scrap BIGINT CHECK (completed_scrap >= 0);
