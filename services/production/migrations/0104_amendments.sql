-- A production run planned for an amended order records the amendment's
-- number (1, 2, ...); the first run and remakes after scrap, which make
-- everything anew, have 0. What an amended run makes is counted from the
-- latest run with 0 on: the good units of the runs since then are what the
-- order already has.
ALTER TABLE work_orders ADD COLUMN amendment INTEGER NOT NULL DEFAULT 0
    CHECK (amendment >= 0);

-- An amended run makes at each stage only what the stage still owes; a
-- stage whose units were all made earlier is stored with quantity 0,
-- completed at once, without hours or bookings.
ALTER TABLE work_order_stages DROP CONSTRAINT work_order_stages_quantity_check;
ALTER TABLE work_order_stages ADD CONSTRAINT work_order_stages_quantity_check
    CHECK (quantity >= 0);
