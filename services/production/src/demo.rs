//! A small demo catalogue for a garment factory, loaded through the public
//! gRPC API (so it passes the same validation as any client's data).
//!
//! Work centres: cutting, sewing, finishing, packing; products: an oxford
//! shirt, a denim jacket and a canvas tote, each with its routing.

use gendan_proto::v1::production_service_client::ProductionServiceClient;
use gendan_proto::v1::{Routing, RoutingStage, WorkCentre};
use tonic::transport::Channel;

/// Work centres: code, name, hours per day (all machines and shifts).
const WORK_CENTRES: [(&str, &str, f64); 4] = [
    ("CUT", "Cutting room", 16.0),
    ("SEW", "Sewing lines", 80.0),
    ("FIN", "Finishing and pressing", 24.0),
    ("PACK", "Packing", 16.0),
];

/// A routing stage: stage, work centre, hours per unit, setup hours.
type Stage = (&'static str, &'static str, f64, f64);

/// Routings: product, then its stages in order.
const ROUTINGS: [(&str, &[Stage]); 3] = [
    (
        "shirt-oxford",
        &[
            ("cutting", "CUT", 0.02, 2.0),
            ("sewing", "SEW", 0.25, 4.0),
            ("finishing", "FIN", 0.05, 1.0),
            ("packing", "PACK", 0.01, 0.5),
        ],
    ),
    (
        "jacket-denim",
        &[
            ("cutting", "CUT", 0.05, 3.0),
            ("sewing", "SEW", 0.8, 6.0),
            ("finishing", "FIN", 0.1, 2.0),
            ("packing", "PACK", 0.02, 0.5),
        ],
    ),
    (
        "tote-canvas",
        &[
            ("cutting", "CUT", 0.01, 1.0),
            ("sewing", "SEW", 0.1, 2.0),
            ("packing", "PACK", 0.01, 0.5),
        ],
    ),
];

/// The product codes the demo catalogue defines.
pub fn demo_products() -> Vec<&'static str> {
    ROUTINGS.iter().map(|(product, _)| *product).collect()
}

/// Creates (or updates) the demo work centres and routings.
pub async fn seed_demo_catalog(
    client: &mut ProductionServiceClient<Channel>,
) -> Result<(), tonic::Status> {
    for (code, name, hours_per_day) in WORK_CENTRES {
        client
            .upsert_work_centre(WorkCentre {
                code: code.to_owned(),
                name: name.to_owned(),
                hours_per_day,
                working_weekdays: vec![1, 2, 3, 4, 5, 6],
                ..WorkCentre::default()
            })
            .await?;
    }
    for (product, stages) in ROUTINGS {
        client
            .set_routing(Routing {
                product: product.to_owned(),
                stages: stages
                    .iter()
                    .map(
                        |(stage, work_centre, hours_per_unit, setup_hours)| RoutingStage {
                            stage: (*stage).to_owned(),
                            work_centre: (*work_centre).to_owned(),
                            hours_per_unit: *hours_per_unit,
                            setup_hours: *setup_hours,
                        },
                    )
                    .collect(),
            })
            .await?;
    }
    Ok(())
}
