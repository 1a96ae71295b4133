-- Final inspections are numbered per order (revision: 1 the first, 2 after
-- the first rework, ...): a repeated request of a revision finds its
-- inspection, and a new revision opens a new one whatever the earlier
-- ones' status. Other kinds keep revision 0.
ALTER TABLE inspections ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- Existing final inspections: numbered in the order they were opened.
UPDATE inspections i
   SET revision = numbered.revision
  FROM (SELECT inspection_id,
               row_number() OVER (PARTITION BY order_id ORDER BY opened_at, inspection_id) AS revision
          FROM inspections
         WHERE kind = 'final') numbered
 WHERE i.inspection_id = numbered.inspection_id;

ALTER TABLE inspections ADD CONSTRAINT inspections_revision_check
    CHECK ((kind = 'final') = (revision >= 1));

-- The revision is the key now; "one open final inspection per order" was
-- the old rule and would refuse a later revision while an earlier is open.
DROP INDEX inspections_one_open_final;
CREATE UNIQUE INDEX inspections_one_per_revision
    ON inspections (order_id, revision) WHERE kind = 'final';

-- ISO 2859-1 inspection severity the sampling plans were drawn at.
-- Everything inspected before the switching rules was normal.
ALTER TABLE inspections ADD COLUMN severity TEXT NOT NULL DEFAULT 'normal'
    CHECK (severity IN ('normal', 'tightened'));

-- Each product's own switching state when the lot was opened (the lot is
-- inspected at the strictest), so a product's history is its own.
ALTER TABLE inspection_items ADD COLUMN severity TEXT NOT NULL DEFAULT 'normal'
    CHECK (severity IN ('normal', 'tightened'));

-- The switching rules read a product's latest final inspections.
CREATE INDEX inspection_items_by_product ON inspection_items (product);
