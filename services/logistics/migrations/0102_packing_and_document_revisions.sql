-- Revisions of an order's packing list and documents. When the customer
-- amends an order before it ships, the saga sends PreparePacking and
-- PrepareDocuments again with the next revision: the list and the document
-- set are built again from the amended order. The earlier ones stay on
-- record with status 'superseded'; the order's current list (set) is its
-- highest revision, the only one not superseded.
--
-- Everything stored before this migration is each order's first revision.

-- Packing lists, their cartons and the checks of what the WMS packed are
-- keyed by order and list revision.
ALTER TABLE packing_list_cartons DROP CONSTRAINT packing_list_cartons_order_id_fkey;
ALTER TABLE packing_checks DROP CONSTRAINT packing_checks_order_id_fkey;

ALTER TABLE packing_lists
    ADD COLUMN revision INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1);
ALTER TABLE packing_lists ALTER COLUMN revision DROP DEFAULT;
ALTER TABLE packing_lists DROP CONSTRAINT packing_lists_status_check;
ALTER TABLE packing_lists ADD CONSTRAINT packing_lists_status_check
    CHECK (status IN ('prepared', 'checked', 'mismatch', 'superseded'));
ALTER TABLE packing_lists DROP CONSTRAINT packing_lists_pkey;
ALTER TABLE packing_lists ADD PRIMARY KEY (order_id, revision);
-- One current list per order.
CREATE UNIQUE INDEX packing_lists_current ON packing_lists (order_id)
    WHERE status <> 'superseded';

ALTER TABLE packing_list_cartons ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE packing_list_cartons ALTER COLUMN revision DROP DEFAULT;
ALTER TABLE packing_list_cartons DROP CONSTRAINT packing_list_cartons_pkey;
ALTER TABLE packing_list_cartons ADD PRIMARY KEY (order_id, revision, carton_number);
ALTER TABLE packing_list_cartons ADD FOREIGN KEY (order_id, revision)
    REFERENCES packing_lists (order_id, revision) ON DELETE CASCADE;

-- A check is of the list revision that was current when the report came.
ALTER TABLE packing_checks ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE packing_checks ALTER COLUMN revision DROP DEFAULT;
ALTER TABLE packing_checks ADD FOREIGN KEY (order_id, revision)
    REFERENCES packing_lists (order_id, revision) ON DELETE CASCADE;
DROP INDEX packing_checks_order;
CREATE INDEX packing_checks_list ON packing_checks (order_id, revision, id);

-- Document sets and their documents are keyed by order and set revision.
ALTER TABLE documents DROP CONSTRAINT documents_order_id_fkey;

ALTER TABLE document_sets
    ADD COLUMN revision INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1);
ALTER TABLE document_sets ALTER COLUMN revision DROP DEFAULT;
-- The packing list revision the documents copied (NULL: there was none).
-- Sets made before this migration copied the order's only list, if any.
ALTER TABLE document_sets ADD COLUMN packing_list_revision INTEGER;
UPDATE document_sets s SET packing_list_revision = 1
    WHERE EXISTS (SELECT 1 FROM packing_lists l WHERE l.order_id = s.order_id);
ALTER TABLE document_sets DROP CONSTRAINT document_sets_status_check;
ALTER TABLE document_sets ADD CONSTRAINT document_sets_status_check
    CHECK (status IN ('ready', 'rejected', 'superseded'));
ALTER TABLE document_sets DROP CONSTRAINT document_sets_pkey;
ALTER TABLE document_sets ADD PRIMARY KEY (order_id, revision);
-- One current set per order.
CREATE UNIQUE INDEX document_sets_current ON document_sets (order_id)
    WHERE status <> 'superseded';

ALTER TABLE documents ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE documents ALTER COLUMN revision DROP DEFAULT;
ALTER TABLE documents DROP CONSTRAINT documents_pkey;
ALTER TABLE documents ADD PRIMARY KEY (order_id, revision, name);
ALTER TABLE documents ADD FOREIGN KEY (order_id, revision)
    REFERENCES document_sets (order_id, revision) ON DELETE CASCADE;
