//! The demo catalogue across every service, and sample orders it can carry
//! through all twelve phases.
//!
//! Consistency rules between the two: every customer of [`CUSTOMERS`] is in
//! the orders service's customer master (with the currency, incoterm and
//! terms its sample orders use as its defaults) and has a packing spec
//! (which logistics keys by the customer's name); every product of the
//! production demo catalogue has a routing, a BOM, an inspection plan and a
//! product master (HS code, net weight, origin); carrier lanes exist in USD
//! (sea, air: export orders) and CNY (road: domestic orders); the payment
//! terms are ones finance parses and that the saga can invoice (deposit at
//! confirmation, balance at shipment; never "on delivery", which the saga
//! does not invoice); the exchange rates cover every pair of a cost's
//! currency and an order's, and sample prices clear each customer's margin
//! floor at review ([`super::catalog_costs`]).

use anyhow::Context;
use gendan_proto::v1::{
    self, BillOfMaterials, BomLine, CarrierLane, Customer, IncomingInspectionPlan, InspectionPlan,
    LabourRate, Material, PackingSpec, ProductMaster, ProductPackingRule, Supplier, SupplierOffer,
};

use super::Clients;
use super::rng::Lcg;

/// Demo customers, each with a packing spec: (customer id, name, country,
/// export customer).
pub(super) const CUSTOMER_PROFILES: [(&str, &str, &str, bool); 7] = [
    ("NORDWIND", "Nordwind GmbH", "DE", true),
    ("MAPLE", "Maple & Co", "CA", true),
    ("SAKURA", "Sakura Trading", "JP", true),
    ("ATLAS", "Atlas Retail", "US", true),
    ("LUMEN", "Lumen SA", "FR", true),
    ("JINYU", "Hangzhou Jinyu Apparel", "CN", false),
    ("RUYI", "Shanghai Ruyi Trading", "CN", false),
];

/// Demo customers (every one has a packing spec after [`seed_catalog`]).
pub const CUSTOMERS: &[&str] = &[
    "Nordwind GmbH",
    "Maple & Co",
    "Sakura Trading",
    "Atlas Retail",
    "Lumen SA",
    "Hangzhou Jinyu Apparel",
    "Shanghai Ruyi Trading",
];

/// Whether the demo customer buys for export (USD, FOB) or domestically
/// (CNY, EXW).
pub fn is_export_customer(customer: &str) -> bool {
    CUSTOMER_PROFILES
        .iter()
        .find(|(_, name, ..)| *name == customer)
        .is_none_or(|(.., export)| *export)
}

/// The demo customer of a profile as the customer master keeps it: its
/// sample orders' currency, incoterm and terms as its defaults (export
/// customers USD and FOB, domestic ones CNY and EXW) and its margin floor;
/// no other rules of its own.
fn demo_customer(profile: (&str, &str, &str, bool), index: usize) -> Customer {
    let (customer_id, name, country, export) = profile;
    let (currency, incoterm, terms) = if export {
        ("USD", "FOB", EXPORT_TERMS)
    } else {
        // Sample orders pick either; each domestic customer defaults to one.
        ("CNY", "EXW", DOMESTIC_TERMS[index % DOMESTIC_TERMS.len()])
    };
    Customer {
        customer_id: customer_id.to_owned(),
        name: name.to_owned(),
        country: country.to_owned(),
        currency: currency.to_owned(),
        payment_terms: terms.to_owned(),
        incoterm: incoterm.to_owned(),
        min_margin_bp: super::catalog_costs::min_margin_bp(customer_id),
        ..Customer::default()
    }
}

/// Products of the production demo catalogue with their logistics data:
/// product, description, HS code, unit net weight kg, order spec text.
pub(super) const PRODUCTS: [(&str, &str, &str, f64, &str); 3] = [
    (
        "shirt-oxford",
        "Men's woven shirt, 100% cotton oxford, long sleeves",
        "6205.20",
        0.25,
        "oxford cotton 120 g/m², button-down collar",
    ),
    (
        "jacket-denim",
        "Men's jacket, cotton denim, woven",
        "6203.32",
        0.9,
        "13 oz denim, stonewashed",
    ),
    (
        "tote-canvas",
        "Tote bag, outer surface of cotton canvas",
        "4202.92",
        0.35,
        "12 oz canvas, natural",
    ),
];

/// Unit price ranges per product: USD cents, CNY fen. The lowest price
/// still leaves the dearest standard cost (air freight, 100 units) a margin
/// above every customer's floor ([`super::catalog_costs`]).
pub(super) fn price_range(product: &str, export: bool) -> (u64, u64) {
    match (product, export) {
        ("shirt-oxford", true) => (1150, 1450),
        ("shirt-oxford", false) => (7200, 9000),
        ("jacket-denim", true) => (2900, 3600),
        ("jacket-denim", false) => (17200, 21500),
        (_, true) => (750, 950),
        (_, false) => (3900, 4900),
    }
}

fn spec_of(product: &str) -> &'static str {
    PRODUCTS
        .iter()
        .find(|p| p.0 == product)
        .map(|p| p.4)
        .unwrap_or("")
}

/// Terms for export orders.
pub const EXPORT_TERMS: &str = "30% T/T deposit, 70% against B/L copy";
/// Terms for domestic orders (both invoiced by the saga's shipment step).
pub const DOMESTIC_TERMS: [&str; 2] = ["NET30", "30% deposit, 70% before shipment"];

/// A sample order, the same for the same `seed`, `run` and `index` (on the
/// same day: dates count from today). Every fifth order (`index % 5 == 4`)
/// asks for delivery in two days, which opens a delivery-date clarification.
pub fn sample_order(seed: u64, run: &str, index: usize) -> v1::CreateOrderRequest {
    let mut rng = Lcg::new(seed ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let (customer_id, customer, _, export) =
        CUSTOMER_PROFILES[rng.below(CUSTOMER_PROFILES.len() as u64) as usize];
    let products = gendan_production::demo::demo_products();
    let line_count = 1 + rng.below(2) as usize;
    let mut lines: Vec<v1::OrderLine> = Vec::with_capacity(line_count);
    for _ in 0..line_count {
        let product = products[rng.below(products.len() as u64) as usize];
        if lines.iter().any(|line| line.product == product) {
            continue;
        }
        let (low, high) = price_range(product, export);
        lines.push(v1::OrderLine {
            product: product.to_owned(),
            spec: spec_of(product).to_owned(),
            quantity: rng.between(1, 10) as u32 * 100,
            unit_price_minor: (rng.between(low, high) / 5 * 5) as i64,
        });
    }
    let lead_days = if index % 5 == 4 {
        2
    } else {
        rng.between(45, 75) as i64
    };
    let requested = chrono::Utc::now().date_naive() + chrono::Duration::days(lead_days);
    let (currency, incoterm, terms) = if export {
        ("USD", "FOB", EXPORT_TERMS)
    } else {
        (
            "CNY",
            "EXW",
            DOMESTIC_TERMS[rng.below(DOMESTIC_TERMS.len() as u64) as usize],
        )
    };
    // The currency, incoterm and terms are sent although they are the
    // customer's defaults (but for one of the domestic terms): the demo
    // orders stay what they were before the customer master.
    v1::CreateOrderRequest {
        client_request_id: format!("sim-{run}-{index}"),
        customer_id: customer_id.to_owned(),
        // Ignored when customer_id is set; kept for readers of the request.
        customer: customer.to_owned(),
        lines,
        currency: currency.to_owned(),
        requested_delivery_date: gendan_proto::date_to_string(requested),
        incoterm: incoterm.to_owned(),
        payment_terms: terms.to_owned(),
        export,
    }
}

// ---- procurement ----

/// Materials: code, name, unit.
const MATERIALS: [(&str, &str, &str); 12] = [
    ("FAB-OXF", "Oxford cotton fabric 120 g/m², 150 cm", "m"),
    ("FAB-DNM", "Denim 13 oz, 150 cm", "m"),
    ("FAB-CNV", "Cotton canvas 12 oz, 150 cm", "m"),
    ("THR-POLY", "Polyester sewing thread, 5000 m cone", "cone"),
    ("BTN-4H", "4-hole shirt button 11 mm", "pcs"),
    ("BTN-SHANK", "Metal shank button 17 mm", "pcs"),
    ("RIVET-CU", "Copper rivet 9 mm", "pcs"),
    ("ZIP-5", "Metal zipper #5, 30 cm", "pcs"),
    ("WEB-25", "Cotton webbing 25 mm", "m"),
    ("LBL-WOVEN", "Woven brand label", "pcs"),
    ("BAG-PE", "Polybag with warning print", "pcs"),
    ("CTN-5PLY", "Export carton 5-ply, 60x40x40 cm", "pcs"),
];

/// Suppliers (all invoice in CNY): code, name.
const SUPPLIERS: [(&str, &str); 3] = [
    ("SUP-HUAFANG", "Huafang Textile Co., Ltd."),
    ("SUP-DGTRIMS", "Dongguan Garment Trims Ltd."),
    ("SUP-NBPACK", "Ningbo Packaging Co., Ltd."),
];

/// Offers: supplier, material, lead time days, unit price fen, MOQ.
pub(super) const OFFERS: [(&str, &str, u32, i64, f64); 15] = [
    ("SUP-HUAFANG", "FAB-OXF", 10, 1850, 200.0),
    ("SUP-HUAFANG", "FAB-DNM", 12, 3200, 200.0),
    ("SUP-HUAFANG", "FAB-CNV", 8, 1600, 100.0),
    ("SUP-DGTRIMS", "FAB-OXF", 6, 2100, 500.0),
    ("SUP-DGTRIMS", "THR-POLY", 3, 1200, 20.0),
    ("SUP-DGTRIMS", "BTN-4H", 4, 8, 2000.0),
    ("SUP-DGTRIMS", "BTN-SHANK", 5, 45, 1000.0),
    ("SUP-DGTRIMS", "RIVET-CU", 5, 20, 1000.0),
    ("SUP-DGTRIMS", "ZIP-5", 7, 180, 500.0),
    ("SUP-DGTRIMS", "WEB-25", 5, 150, 200.0),
    ("SUP-DGTRIMS", "LBL-WOVEN", 4, 12, 1000.0),
    ("SUP-NBPACK", "BAG-PE", 3, 10, 1000.0),
    ("SUP-NBPACK", "CTN-5PLY", 3, 650, 100.0),
    ("SUP-NBPACK", "THR-POLY", 9, 1100, 50.0),
    ("SUP-NBPACK", "LBL-WOVEN", 6, 10, 2000.0),
];

/// A BOM line: material, quantity per unit, scrap %.
type BomLineDef = (&'static str, f64, f64);

/// Bills of materials: product, then its lines.
pub(super) const BOMS: [(&str, &[BomLineDef]); 3] = [
    (
        "shirt-oxford",
        &[
            ("FAB-OXF", 1.6, 5.0),
            ("THR-POLY", 0.02, 2.0),
            ("BTN-4H", 9.0, 3.0),
            ("LBL-WOVEN", 1.0, 1.0),
            ("BAG-PE", 1.0, 1.0),
            ("CTN-5PLY", 0.025, 0.0),
        ],
    ),
    (
        "jacket-denim",
        &[
            ("FAB-DNM", 2.2, 6.0),
            ("THR-POLY", 0.04, 2.0),
            ("BTN-SHANK", 7.0, 3.0),
            ("RIVET-CU", 6.0, 3.0),
            ("LBL-WOVEN", 1.0, 1.0),
            ("BAG-PE", 1.0, 1.0),
            ("CTN-5PLY", 0.05, 0.0),
        ],
    ),
    (
        "tote-canvas",
        &[
            ("FAB-CNV", 0.9, 5.0),
            ("WEB-25", 1.2, 3.0),
            ("ZIP-5", 1.0, 2.0),
            ("THR-POLY", 0.01, 2.0),
            ("LBL-WOVEN", 1.0, 1.0),
            ("CTN-5PLY", 0.025, 0.0),
        ],
    ),
];

/// Stock on hand at the start: trims and packaging in stock, canvas and
/// webbing for a few tote orders; oxford and denim always bought.
const STOCK: [(&str, f64); 9] = [
    ("FAB-CNV", 1500.0),
    ("WEB-25", 2000.0),
    ("ZIP-5", 1500.0),
    ("THR-POLY", 300.0),
    ("BTN-4H", 20000.0),
    ("LBL-WOVEN", 10000.0),
    ("BAG-PE", 8000.0),
    ("CTN-5PLY", 800.0),
    ("RIVET-CU", 3000.0),
];

/// Incoming inspection AQLs: fabrics 2.5, trims 4.0, packaging 6.5.
fn incoming_aql(material: &str) -> f64 {
    if material.starts_with("FAB-") {
        2.5
    } else if matches!(material, "BAG-PE" | "CTN-5PLY") {
        6.5
    } else {
        4.0
    }
}

// ---- logistics ----

/// Packing specs: customer, units per carton (shirt, jacket, tote), barcode
/// type, max gross kg, tare kg.
pub(super) const PACKING: [(&str, [u32; 3], &str, f64, f64); 7] = [
    ("Nordwind GmbH", [40, 20, 40], "GS1-128", 22.0, 1.0),
    ("Maple & Co", [36, 18, 40], "EAN-13", 22.0, 1.0),
    ("Sakura Trading", [30, 12, 30], "ITF-14", 15.0, 0.8),
    ("Atlas Retail", [48, 20, 50], "CODE-128", 25.0, 1.2),
    ("Lumen SA", [40, 20, 40], "GS1-128", 22.0, 1.0),
    (
        "Hangzhou Jinyu Apparel",
        [50, 20, 50],
        "CODE-128",
        25.0,
        1.0,
    ),
    ("Shanghai Ruyi Trading", [40, 20, 40], "EAN-13", 22.0, 1.0),
];

const MARKS: &str =
    "{customer} / PO {order} / {product} x{quantity} / C/NO {carton} OF {total} / MADE IN CHINA";

/// Carrier lanes: code, carrier, mode, weekday, transit, cut-off, basis,
/// rate minor, currency.
type LaneDef = (
    &'static str,
    &'static str,
    &'static str,
    u32,
    u32,
    u32,
    &'static str,
    i64,
    &'static str,
);

pub(super) const LANES: [LaneDef; 11] = [
    (
        "SEA-SHA-EU-USD",
        "COSCO Shipping",
        "sea",
        3,
        25,
        4,
        "per_carton",
        650,
        "USD",
    ),
    (
        "AIR-PVG-MON-USD",
        "Cathay Cargo",
        "air",
        1,
        3,
        1,
        "per_kg",
        550,
        "USD",
    ),
    (
        "AIR-PVG-WED-USD",
        "Cathay Cargo",
        "air",
        3,
        3,
        1,
        "per_kg",
        550,
        "USD",
    ),
    (
        "AIR-PVG-FRI-USD",
        "Cathay Cargo",
        "air",
        5,
        3,
        1,
        "per_kg",
        550,
        "USD",
    ),
    (
        "ROAD-CN-MON-CNY",
        "SF Freight",
        "road",
        1,
        2,
        1,
        "per_carton",
        3500,
        "CNY",
    ),
    (
        "ROAD-CN-TUE-CNY",
        "SF Freight",
        "road",
        2,
        2,
        1,
        "per_carton",
        3500,
        "CNY",
    ),
    (
        "ROAD-CN-WED-CNY",
        "SF Freight",
        "road",
        3,
        2,
        1,
        "per_carton",
        3500,
        "CNY",
    ),
    (
        "ROAD-CN-THU-CNY",
        "SF Freight",
        "road",
        4,
        2,
        1,
        "per_carton",
        3500,
        "CNY",
    ),
    (
        "ROAD-CN-FRI-CNY",
        "SF Freight",
        "road",
        5,
        2,
        1,
        "per_carton",
        3500,
        "CNY",
    ),
    (
        "ROAD-CN-SAT-CNY",
        "SF Freight",
        "road",
        6,
        2,
        1,
        "per_carton",
        3500,
        "CNY",
    ),
    (
        "AIR-CN-WED-CNY",
        "China Eastern Logistics",
        "air",
        3,
        1,
        1,
        "per_kg",
        1200,
        "CNY",
    ),
];

/// Labour rates per work centre, CNY fen per hour. Finance keeps one rate
/// per work centre, so there is one currency: the factory's.
const LABOUR_RATES: [(&str, i64); 4] =
    [("CUT", 3500), ("SEW", 4200), ("FIN", 3800), ("PACK", 3000)];

/// Loads the demo catalogue into every service through its gRPC API, in
/// the order an order needs it: customers first (an order is refused
/// without its customer), then production, procurement, quality, logistics
/// and finance (labour rates, exchange rates, the inspection rate). Idempotent: upserts; stock is counted only where none is
/// held yet.
pub async fn seed_catalog(clients: &Clients) -> anyhow::Result<()> {
    seed_customers(clients).await?;
    gendan_production::demo::seed_demo_catalog(&mut clients.production_plain())
        .await
        .context("production: work centres and routings")?;
    seed_procurement(clients).await?;
    seed_quality(clients).await?;
    seed_logistics(clients).await?;
    seed_finance(clients).await?;
    super::catalog_costs::seed_costs(clients).await?;
    Ok(())
}

async fn seed_customers(clients: &Clients) -> anyhow::Result<()> {
    let mut orders = clients.orders.clone();
    for (index, profile) in CUSTOMER_PROFILES.into_iter().enumerate() {
        orders
            .upsert_customer(demo_customer(profile, index))
            .await
            .with_context(|| format!("orders: customer {}", profile.0))?;
    }
    Ok(())
}

async fn seed_procurement(clients: &Clients) -> anyhow::Result<()> {
    let mut procurement = clients.procurement.clone();
    for (code, name, unit) in MATERIALS {
        procurement
            .upsert_material(Material {
                code: code.to_owned(),
                name: name.to_owned(),
                unit: unit.to_owned(),
            })
            .await
            .with_context(|| format!("procurement: material {code}"))?;
    }
    for (code, name) in SUPPLIERS {
        procurement
            .upsert_supplier(Supplier {
                code: code.to_owned(),
                name: name.to_owned(),
                currency: "CNY".to_owned(),
            })
            .await
            .with_context(|| format!("procurement: supplier {code}"))?;
    }
    for (supplier, material, lead_time_days, unit_price_minor, moq) in OFFERS {
        procurement
            .upsert_supplier_offer(SupplierOffer {
                supplier: supplier.to_owned(),
                material: material.to_owned(),
                lead_time_days,
                unit_price_minor,
                minimum_order_quantity: moq,
                currency: String::new(),
            })
            .await
            .with_context(|| format!("procurement: offer of {supplier} for {material}"))?;
    }
    for (product, lines) in BOMS {
        procurement
            .set_bill_of_materials(BillOfMaterials {
                product: product.to_owned(),
                lines: lines
                    .iter()
                    .map(|(material, quantity_per_unit, scrap_percent)| BomLine {
                        material: (*material).to_owned(),
                        quantity_per_unit: *quantity_per_unit,
                        scrap_percent: *scrap_percent,
                    })
                    .collect(),
            })
            .await
            .with_context(|| format!("procurement: bill of materials of {product}"))?;
    }
    for (material, on_hand) in STOCK {
        let current = procurement
            .get_stock(v1::GetStockRequest {
                material: material.to_owned(),
            })
            .await;
        let untouched = match current {
            Ok(level) => {
                let level = level.into_inner();
                level.on_hand == 0.0 && level.reserved == 0.0
            }
            Err(status) if status.code() == tonic::Code::NotFound => true,
            Err(status) => {
                return Err(status).with_context(|| format!("procurement: stock of {material}"));
            }
        };
        if untouched {
            procurement
                .set_stock(v1::SetStockRequest {
                    material: material.to_owned(),
                    on_hand,
                })
                .await
                .with_context(|| format!("procurement: stock of {material}"))?;
        }
    }
    Ok(())
}

async fn seed_quality(clients: &Clients) -> anyhow::Result<()> {
    let mut quality = clients.quality.clone();
    for (product, ..) in PRODUCTS {
        quality
            .set_inspection_plan(InspectionPlan {
                product: product.to_owned(),
                critical_aql: Some(0.0),
                major_aql: Some(2.5),
                minor_aql: Some(4.0),
                in_process_stages: Vec::new(),
                is_default: false,
            })
            .await
            .with_context(|| format!("quality: inspection plan of {product}"))?;
    }
    for (material, ..) in MATERIALS {
        quality
            .set_incoming_inspection_plan(IncomingInspectionPlan {
                material: material.to_owned(),
                aql: Some(incoming_aql(material)),
                is_default: false,
            })
            .await
            .with_context(|| format!("quality: incoming plan of {material}"))?;
    }
    Ok(())
}

async fn seed_logistics(clients: &Clients) -> anyhow::Result<()> {
    let mut logistics = clients.logistics.clone();
    for (customer, units, barcode, max_gross, tare) in PACKING {
        // Packing specs are keyed by the customer master's id.
        let customer_id = CUSTOMER_PROFILES
            .iter()
            .find(|(_, name, ..)| *name == customer)
            .map(|(id, ..)| *id)
            .with_context(|| format!("{customer} is not a demo customer"))?;
        logistics
            .upsert_packing_spec(PackingSpec {
                customer: customer_id.to_owned(),
                default_units_per_carton: units[0],
                product_rules: PRODUCTS
                    .iter()
                    .zip(units)
                    .map(|(product, units_per_carton)| ProductPackingRule {
                        product: product.0.to_owned(),
                        units_per_carton,
                    })
                    .collect(),
                marks_template: MARKS.to_owned(),
                barcode_type: barcode.to_owned(),
                max_gross_weight_kg: max_gross,
                carton_tare_kg: tare,
            })
            .await
            .with_context(|| format!("logistics: packing spec of {customer}"))?;
    }
    for (product, description, hs_code, weight, _) in PRODUCTS {
        logistics
            .upsert_product_master(ProductMaster {
                product: product.to_owned(),
                description: description.to_owned(),
                hs_code: hs_code.to_owned(),
                unit_net_weight_kg: weight,
                country_of_origin: "CN".to_owned(),
            })
            .await
            .with_context(|| format!("logistics: product master of {product}"))?;
    }
    for (code, carrier, mode, weekday, transit, cutoff, basis, rate, currency) in LANES {
        logistics
            .upsert_carrier_lane(CarrierLane {
                code: code.to_owned(),
                carrier: carrier.to_owned(),
                mode: mode.to_owned(),
                departure_weekday: weekday,
                transit_days: transit,
                cutoff_days: cutoff,
                cost_basis: basis.to_owned(),
                rate_minor: rate,
                currency: currency.to_owned(),
            })
            .await
            .with_context(|| format!("logistics: carrier lane {code}"))?;
    }
    Ok(())
}

async fn seed_finance(clients: &Clients) -> anyhow::Result<()> {
    let mut finance = clients.finance.clone();
    for (work_centre, rate) in LABOUR_RATES {
        finance
            .set_labour_rate(LabourRate {
                work_centre: work_centre.to_owned(),
                currency: "CNY".to_owned(),
                rate_minor_per_hour: rate,
            })
            .await
            .with_context(|| format!("finance: labour rate of {work_centre}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use gendan_logistics::packing::{self, Barcode, Spec};

    use super::*;

    #[test]
    fn customers_and_profiles_agree() {
        assert_eq!(CUSTOMERS.len(), CUSTOMER_PROFILES.len());
        for (index, (customer, profile)) in CUSTOMERS.iter().zip(CUSTOMER_PROFILES).enumerate() {
            assert_eq!(*customer, profile.1);
            assert!(
                PACKING.iter().any(|spec| spec.0 == *customer),
                "{customer} has no packing spec"
            );
            // The master takes every demo customer, under an id of its own.
            let checked =
                gendan_orders::customers::validate::customer(&demo_customer(profile, index))
                    .unwrap_or_else(|err| panic!("{customer}: {err}"));
            assert_eq!(checked.name, *customer);
            gendan_finance::terms::parse(&checked.payment_terms)
                .unwrap_or_else(|err| panic!("{customer}: {err}"));
        }
        let mut ids: Vec<&str> = CUSTOMER_PROFILES.iter().map(|p| p.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            CUSTOMER_PROFILES.len(),
            "customer ids are unique"
        );
    }

    #[test]
    fn sample_orders_are_deterministic() {
        for index in 0..20 {
            assert_eq!(sample_order(7, "run", index), sample_order(7, "run", index));
        }
        let a: Vec<_> = (0..20).map(|i| sample_order(7, "run", i)).collect();
        let b: Vec<_> = (0..20).map(|i| sample_order(8, "run", i)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn sample_orders_fit_the_catalogue() {
        let today = chrono::Utc::now().date_naive();
        let products = gendan_production::demo::demo_products();
        let mut exports = 0;
        let mut domestic = 0;
        for index in 0..200 {
            let order = sample_order(42, "r1", index);
            assert_eq!(order.client_request_id, format!("sim-r1-{index}"));
            assert!(CUSTOMERS.contains(&order.customer.as_str()));
            // The id names the same demo customer, whose defaults are the
            // order's own but for the domestic terms sample orders vary.
            let (position, profile) = CUSTOMER_PROFILES
                .iter()
                .enumerate()
                .find(|(_, profile)| profile.0 == order.customer_id)
                .expect("a demo customer id");
            assert_eq!(profile.1, order.customer);
            let master = demo_customer(*profile, position);
            assert_eq!(
                (master.currency.as_str(), master.incoterm.as_str()),
                (order.currency.as_str(), order.incoterm.as_str())
            );
            if order.export {
                assert_eq!(master.payment_terms, order.payment_terms);
            }
            assert!(!order.lines.is_empty() && order.lines.len() <= 2);
            for line in &order.lines {
                assert!(
                    products.contains(&line.product.as_str()),
                    "{}",
                    line.product
                );
                assert!((100..=1000).contains(&line.quantity));
                assert!(line.unit_price_minor > 0);
                assert!(BOMS.iter().any(|bom| bom.0 == line.product));
                assert!(PRODUCTS.iter().any(|p| p.0 == line.product));
            }
            let requested = gendan_proto::date_from_str(&order.requested_delivery_date).unwrap();
            let days = (requested - today).num_days();
            if index % 5 == 4 {
                assert_eq!(days, 2);
            } else {
                assert!((45..=75).contains(&days), "{days}");
            }
            gendan_finance::terms::parse(&order.payment_terms)
                .unwrap_or_else(|err| panic!("{}: {err}", order.payment_terms));
            assert!(
                !order
                    .payment_terms
                    .to_ascii_lowercase()
                    .contains("delivery")
            );
            if order.export {
                exports += 1;
                assert_eq!(
                    (order.currency.as_str(), order.incoterm.as_str()),
                    ("USD", "FOB")
                );
            } else {
                domestic += 1;
                assert_eq!(
                    (order.currency.as_str(), order.incoterm.as_str()),
                    ("CNY", "EXW")
                );
            }
            assert!(
                LANES.iter().any(|lane| lane.8 == order.currency),
                "no lane in {}",
                order.currency
            );
        }
        assert!(exports > 0 && domestic > 0);
    }

    #[test]
    fn master_data_passes_logistics_validation() {
        for (product, description, hs_code, weight, _) in PRODUCTS {
            gendan_logistics::validate::product_master(&ProductMaster {
                product: product.into(),
                description: description.into(),
                hs_code: hs_code.into(),
                unit_net_weight_kg: weight,
                country_of_origin: "CN".into(),
            })
            .unwrap();
        }
        for lane in LANES {
            gendan_logistics::validate::carrier_lane(&CarrierLane {
                code: lane.0.into(),
                carrier: lane.1.into(),
                mode: lane.2.into(),
                departure_weekday: lane.3,
                transit_days: lane.4,
                cutoff_days: lane.5,
                cost_basis: lane.6.into(),
                rate_minor: lane.7,
                currency: lane.8.into(),
            })
            .unwrap();
        }
        // Full cartons of every product stay within each customer's limit.
        let weights: HashMap<String, f64> =
            PRODUCTS.iter().map(|p| (p.0.to_owned(), p.3)).collect();
        for (customer, units, barcode, max_gross, tare) in PACKING {
            let spec = Spec {
                customer: customer.into(),
                default_units_per_carton: units[0],
                units_per_carton: PRODUCTS
                    .iter()
                    .zip(units)
                    .map(|(p, u)| (p.0.to_owned(), u))
                    .collect(),
                marks_template: MARKS.into(),
                barcode: Barcode::parse(barcode).unwrap(),
                max_gross_weight_kg: max_gross,
                carton_tare_kg: tare,
            };
            packing::check_template(MARKS).unwrap();
            let items: Vec<(String, u32)> =
                PRODUCTS.iter().map(|p| (p.0.to_owned(), 1000)).collect();
            packing::build("o", &spec, &items, &weights)
                .unwrap_or_else(|err| panic!("{customer}: {err}"));
        }
    }
}
