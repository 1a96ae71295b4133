-- Redeliveries: when a customer's claim on delivered goods is resolved by a
-- replacement (or by reworking the goods), the saga books a new shipment of
-- the claimed goods for the same order (BookShipment with `redelivery`).
-- The new booking becomes the order's `shipments` row; the earlier shipment
-- stays on record on its `bookings` row, with what happened to its goods.

-- What happened to the goods that travelled under each booking, written
-- with the `shipments` row while the booking is current and kept when a
-- redelivery replaces it: the bill of lading and day they left, the packing
-- list revision they were packed to (what a claim against the booking is
-- checked against), and the delivery with its proof.
ALTER TABLE bookings
    ADD COLUMN bill_of_lading TEXT,
    ADD COLUMN shipped_on DATE,
    ADD COLUMN shipped_list_revision INTEGER CHECK (shipped_list_revision >= 1),
    ADD COLUMN delivered_on DATE,
    ADD COLUMN proof_of_delivery TEXT;

-- Goods that left before this migration left under the order's current
-- booking, packed to its current (only unsuperseded) packing list.
UPDATE bookings b
SET bill_of_lading = s.bill_of_lading,
    shipped_on = s.shipped_on,
    shipped_list_revision = (SELECT max(l.revision) FROM packing_lists l
                             WHERE l.order_id = b.order_id),
    delivered_on = s.delivered_on,
    proof_of_delivery = s.proof_of_delivery
FROM shipments s
WHERE s.order_id = b.order_id AND s.revision = b.revision
  AND s.status IN ('shipped', 'delivered');

CREATE INDEX bookings_bill_of_lading ON bookings (order_id, bill_of_lading)
    WHERE bill_of_lading IS NOT NULL;

-- The latest BookShipment revision the current booking answered: its own
-- revision, or a later one when a re-booking found the goods already gone
-- and answered with the booking they left under. Shipped and Delivered
-- carry it, so they answer the booking revision the saga was told.
ALTER TABLE shipments ADD COLUMN announced_revision INTEGER;
UPDATE shipments SET announced_revision = revision;
ALTER TABLE shipments ALTER COLUMN announced_revision SET NOT NULL;
ALTER TABLE shipments ADD CONSTRAINT shipments_announced_revision_check
    CHECK (announced_revision >= revision);

-- Tracking updates belong to one booking's goods: the order's shipment view
-- shows the current booking's, and an earlier shipment's stay on record.
ALTER TABLE tracking_events ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tracking_events ALTER COLUMN revision DROP DEFAULT;
UPDATE tracking_events t SET revision = s.revision
FROM shipments s WHERE s.order_id = t.order_id;
DROP INDEX tracking_events_order;
CREATE INDEX tracking_events_booking ON tracking_events (order_id, revision, at, id);
