//! The goods' way out: the warehouse packing and shipping what the packing
//! list says, and the carrier tracking the shipment to delivery. Both
//! report through external events (`gendan.ext.wms.*`, `gendan.ext.carrier.*`).

use anyhow::Context;
use gendan_proto::timestamp_from;
use gendan_proto::v1;
use tonic::Code;

use super::{Booking, World, bump, prefix, retry};
use crate::sim::barcode;

const WMS_PACKED: &str = "gendan.ext.wms.outbound.packed";
const WMS_SHIPPED: &str = "gendan.ext.wms.outbound.shipped";
const CARRIER_TRACKING: &str = "gendan.ext.carrier.tracking";
const CARRIER_DELIVERED: &str = "gendan.ext.carrier.delivered";
const CARRIER_CARGO_EXCEPTION: &str = "gendan.ext.carrier.cargo_exception";

impl World {
    // ---- warehouse ----

    /// The warehouse packs exactly what the packing list says.
    pub(super) async fn pack(&self, order_id: String) -> anyhow::Result<()> {
        self.pause_on(&order_id, 0.5).await;
        let logistics = self.clients.logistics.clone();
        let list = retry(&[Code::NotFound], || {
            let mut logistics = logistics.clone();
            let request = v1::GetPackingListRequest {
                order_id: order_id.clone(),
            };
            async move { logistics.get_packing_list(request).await }
        })
        .await
        .context("reading the packing list")?;
        let packed = v1::WmsPacked {
            order_id: order_id.clone(),
            cartons: wms_cartons(&order_id, &list),
            at: Some(timestamp_from(self.now(&order_id))),
        };
        self.publish(WMS_PACKED, "wms:sim", &order_id, &packed)
            .await?;
        bump(&self.stats.packed);
        Ok(())
    }

    /// The goods leave the dock a day after the booking.
    pub(super) async fn ship(&self, order_id: String, revision: u32) -> anyhow::Result<()> {
        self.pause_on(&order_id, 1.0).await;
        // Each booking leaves under a bill of lading of its own (a claim's
        // redelivery is a second shipment).
        let mut bill_of_lading = format!("BL-{}", prefix(&order_id).to_ascii_uppercase());
        if revision > 1 {
            bill_of_lading.push_str(&format!("-{revision}"));
        }
        let shipped = v1::WmsShipped {
            order_id: order_id.clone(),
            bill_of_lading,
            at: Some(timestamp_from(self.now(&order_id))),
        };
        self.publish(WMS_SHIPPED, "wms:sim", &order_id, &shipped)
            .await?;
        bump(&self.stats.shipped);
        Ok(())
    }

    // ---- carrier ----

    async fn booking(&self, order_id: &str) -> anyhow::Result<Booking> {
        let known = self
            .bookings
            .lock()
            .ok()
            .and_then(|bookings| bookings.get(order_id).cloned());
        if let Some(booking) = known {
            return Ok(booking);
        }
        let logistics = self.clients.logistics.clone();
        let shipment = retry(&[Code::NotFound], || {
            let mut logistics = logistics.clone();
            let request = v1::GetShipmentRequest {
                order_id: order_id.to_owned(),
            };
            async move { logistics.get_shipment(request).await }
        })
        .await
        .context("reading the shipment")?;
        Ok(Booking {
            reference: shipment.booking_reference,
            mode: shipment.mode,
            transit_days: transit_days(&shipment.etd, &shipment.eta),
        })
    }

    /// Tracking at departure and half-way, then delivery after the transit;
    /// or, when the carrier `loses` the cargo, a cargo exception after the
    /// departure and nothing more.
    pub(super) async fn carry(&self, order_id: String, loses: bool) -> anyhow::Result<()> {
        let booking = self.booking(&order_id).await?;
        let (origin, midway, destination) = match booking.mode.as_str() {
            "sea" => (
                "Shanghai, Yangshan terminal",
                "Strait of Malacca",
                "port of destination",
            ),
            "air" => (
                "Shanghai Pudong airport (PVG)",
                "in flight",
                "airport of destination",
            ),
            _ => (
                "Shaoxing factory gate",
                "Hangzhou hub",
                "consignee's warehouse",
            ),
        };
        // The carrier expects the goods the transit's days after they leave.
        let arrives = gendan_proto::date_to_string(
            self.now(&order_id).date_naive() + chrono::Duration::days(booking.transit_days),
        );
        let tracking = |status: &str, location: &str| v1::CarrierTracking {
            order_id: order_id.clone(),
            booking_reference: booking.reference.clone(),
            status: status.to_owned(),
            location: location.to_owned(),
            at: Some(timestamp_from(self.now(&order_id))),
            eta: arrives.clone(),
        };
        self.publish(
            CARRIER_TRACKING,
            "carrier:sim",
            &order_id,
            &tracking("departed", origin),
        )
        .await?;
        bump(&self.stats.tracking_updates);
        if self.options.carrier_silent {
            return Ok(());
        }
        if loses {
            self.pause_on(&order_id, 1.0).await;
            let lost = v1::CarrierCargoException {
                order_id: order_id.clone(),
                booking_reference: booking.reference.clone(),
                kind: "lost".to_owned(),
                description: "container lost overboard in heavy weather".to_owned(),
                // The whole shipment.
                quantity: 0,
                at: Some(timestamp_from(self.now(&order_id))),
            };
            self.publish(CARRIER_CARGO_EXCEPTION, "carrier:sim", &order_id, &lost)
                .await?;
            tracing::info!(%order_id, booking = %booking.reference, "simulated carrier lost the cargo");
            return Ok(());
        }
        let half = booking.transit_days as f64 / 2.0;
        self.pause_on(&order_id, half).await;
        self.publish(
            CARRIER_TRACKING,
            "carrier:sim",
            &order_id,
            &tracking("in transit", midway),
        )
        .await?;
        bump(&self.stats.tracking_updates);
        self.pause_on(&order_id, half).await;
        self.publish(
            CARRIER_TRACKING,
            "carrier:sim",
            &order_id,
            &tracking("arrived", destination),
        )
        .await?;
        bump(&self.stats.tracking_updates);
        let delivered = v1::CarrierDelivered {
            order_id: order_id.clone(),
            booking_reference: booking.reference.clone(),
            proof_of_delivery: format!(
                "POD {}: received in good order at the {destination}, signed by the consignee",
                booking.reference
            ),
            at: Some(timestamp_from(self.now(&order_id))),
        };
        self.publish(CARRIER_DELIVERED, "carrier:sim", &order_id, &delivered)
            .await?;
        bump(&self.stats.delivered);
        Ok(())
    }
}

fn transit_days(etd: &str, eta: &str) -> i64 {
    match (
        gendan_proto::date_from_str(etd),
        gendan_proto::date_from_str(eta),
    ) {
        (Some(etd), Some(eta)) => (eta - etd).num_days().max(1),
        _ => 1,
    }
}

pub(super) fn booking_of(event: &v1::ShipmentBooked) -> Booking {
    Booking {
        reference: event.booking_reference.clone(),
        mode: event.mode.clone(),
        transit_days: transit_days(&event.etd, &event.eta),
    }
}

/// The cartons the warehouse reports for a packing list: the same numbers,
/// products, quantities and marks, a label of the required type, and the
/// scale's weight (the list's gross weight, or the heaviest allowed less a
/// little when the list knows no weight).
pub(crate) fn wms_cartons(order_id: &str, list: &v1::PackingList) -> Vec<v1::WmsCarton> {
    list.cartons
        .iter()
        .map(|carton| {
            let gross = if carton.gross_weight_kg > 0.0 {
                carton.gross_weight_kg
            } else {
                (list.max_gross_weight_kg * 0.8).max(0.001)
            };
            v1::WmsCarton {
                carton_number: carton.carton_number,
                product: carton.product.clone(),
                quantity: carton.quantity,
                marks: carton.marks.clone(),
                label_barcode: barcode::label(
                    &list.barcode_type,
                    order_id,
                    carton.carton_number,
                    &carton.product,
                ),
                gross_weight_kg: gross,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use gendan_logistics::packing::{self, Barcode, PackedCarton, Requirements, Spec};

    use super::*;

    #[test]
    fn packed_cartons_match_the_packing_list() {
        let order_id = "0193a5e2-7c4f-7d10-9a3e-5b2f8c1d4e6a";
        for barcode_type in ["GS1-128", "EAN-13", "ITF-14", "CODE-128"] {
            let spec = Spec {
                customer: "Nordwind GmbH".into(),
                default_units_per_carton: 40,
                units_per_carton: [("jacket-denim".to_owned(), 20)].into(),
                marks_template: "{customer} / PO {order} / C/NO {carton} OF {total}".into(),
                barcode: Barcode::parse(barcode_type).unwrap(),
                max_gross_weight_kg: 22.0,
                carton_tare_kg: 1.0,
            };
            let items = vec![
                ("shirt-oxford".to_owned(), 130),
                ("jacket-denim".to_owned(), 50),
            ];
            let weights = HashMap::from([
                ("shirt-oxford".to_owned(), 0.25),
                ("jacket-denim".to_owned(), 0.9),
            ]);
            let cartons = packing::build(order_id, &spec, &items, &weights).unwrap();
            let list = v1::PackingList {
                order_id: order_id.into(),
                customer: spec.customer.clone(),
                cartons: cartons
                    .iter()
                    .map(|c| v1::PackingListCarton {
                        carton_number: c.carton_number,
                        product: c.product.clone(),
                        quantity: c.quantity,
                        marks: c.marks.clone(),
                        net_weight_kg: c.net_weight_kg,
                        gross_weight_kg: c.gross_weight_kg,
                    })
                    .collect(),
                total_cartons: cartons.len() as u32,
                barcode_type: barcode_type.into(),
                max_gross_weight_kg: 22.0,
                ..Default::default()
            };
            let packed: Vec<PackedCarton> = wms_cartons(order_id, &list)
                .into_iter()
                .map(|c| PackedCarton {
                    carton_number: c.carton_number,
                    product: c.product,
                    quantity: c.quantity,
                    marks: c.marks,
                    label_barcode: c.label_barcode,
                    gross_weight_kg: c.gross_weight_kg,
                })
                .collect();
            let required = Requirements {
                barcode: spec.barcode,
                max_gross_weight_kg: 22.0,
            };
            assert_eq!(
                packing::compare(&cartons, required, &packed),
                Vec::<String>::new(),
                "{barcode_type}"
            );
        }
    }

    #[test]
    fn transit_days_come_from_the_booking_dates() {
        assert_eq!(transit_days("2026-03-04", "2026-03-29"), 25);
        assert_eq!(transit_days("2026-03-04", "2026-03-04"), 1);
        assert_eq!(transit_days("", "2026-03-04"), 1);
    }
}
