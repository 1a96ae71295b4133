//! An amended order's materials, against real NATS and PostgreSQL; the
//! test plays the saga by sending procurement's commands. ProcureMaterials
//! with the next revision buys only the difference for a larger order
//! (MaterialsOrdered of the revision says what changed), answers a re-sent
//! revision with the same fact and nothing bought, and for a smaller order
//! cancels the latest PO and reduces the earlier one (not below the
//! supplier's minimum) and releases reservations; the reduced PO's receipt
//! makes the order ready for that revision. An order served from stock is
//! checked again counting its own reservation, and amended down is ready
//! again at once.
//!
//! The catalogue is procurement.rs's: a shirt takes 1.5 m of fabric with
//! 2 % scrap (1.53 m) and 8 buttons; fabric from FAST (7 days, 5.00/m, MOQ
//! 100 m) or CHEAP (20 days); buttons from CHEAP; 50 m of fabric and 10 000
//! buttons in stock.

use std::time::Duration;

use chrono::{Days, Utc};
use gendan_messaging::{Cause, Outgoing, fact_id};
use gendan_procurement::{Application, WMS_GOODS_RECEIVED};
use gendan_proto::TypeName;
use gendan_proto::v1::procurement_service_client::ProcurementServiceClient;
use gendan_proto::v1::{
    BillOfMaterials, BomLine, CheckMaterials, GetOrderMaterialsRequest, GetPurchaseOrderRequest,
    GetStockRequest, GoodsReceived, IncomingInspectionPassed, Material, MaterialsChecked,
    MaterialsOrdered, MaterialsReady, ProcureMaterials, ProcurementFailed, ProductQuantity,
    PurchaseOrderPlaced, SetStockRequest, StockLevel, Supplier, SupplierOffer, WmsGoodsReceived,
};
use gendan_tests::{Running, SubjectReader};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);

struct Procurement {
    svc: Running,
    client: ProcurementServiceClient<Channel>,
}

impl Procurement {
    async fn start() -> anyhow::Result<Self> {
        let svc = Running::start("procurement", Application::build).await?;
        let client = ProcurementServiceClient::connect(svc.endpoint()).await?;
        Ok(Procurement { svc, client })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.svc.stop().await
    }

    /// procurement.rs's catalogue (see the module doc).
    async fn seed(&mut self) -> anyhow::Result<()> {
        for (code, unit) in [("fabric", "m"), ("button", "pcs")] {
            self.client
                .upsert_material(Material {
                    code: code.into(),
                    name: String::new(),
                    unit: unit.into(),
                })
                .await?;
        }
        for code in ["FAST", "CHEAP"] {
            self.client
                .upsert_supplier(Supplier {
                    code: code.into(),
                    name: format!("{code} Textiles"),
                    currency: "USD".into(),
                })
                .await?;
        }
        for (supplier, material, lead, price, moq) in [
            ("FAST", "fabric", 7, 500, 100.0),
            ("CHEAP", "fabric", 20, 300, 0.0),
            ("CHEAP", "button", 10, 5, 1000.0),
        ] {
            self.client
                .upsert_supplier_offer(SupplierOffer {
                    supplier: supplier.into(),
                    material: material.into(),
                    lead_time_days: lead,
                    unit_price_minor: price,
                    minimum_order_quantity: moq,
                    currency: String::new(),
                })
                .await?;
        }
        self.client
            .set_bill_of_materials(BillOfMaterials {
                product: "shirt".into(),
                lines: vec![line("fabric", 1.5, 2.0), line("button", 8.0, 0.0)],
            })
            .await?;
        for (material, on_hand) in [("fabric", 50.0), ("button", 10_000.0)] {
            self.client
                .set_stock(SetStockRequest {
                    material: material.into(),
                    on_hand,
                })
                .await?;
        }
        Ok(())
    }

    async fn events(&self) -> anyhow::Result<SubjectReader> {
        SubjectReader::open(&self.svc.nats.url, "GENDAN_EVT", "gendan.evt.procurement.>").await
    }

    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.command(order_id, payload).await.map(drop)
    }

    /// Sends a command again on purpose and waits until it was handled.
    async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.repeat(order_id, payload).await
    }

    async fn publish<M: prost::Message + TypeName>(
        &self,
        subject: &str,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let message = Outgoing::new(
            subject.to_owned(),
            "test",
            order_id,
            payload,
            &Cause::root(order_id),
        );
        self.svc.bus.publish(&message).await?;
        Ok(())
    }

    async fn procure(&self, order_id: &str, shirts: u32, revision: u32) -> anyhow::Result<()> {
        self.command(order_id, &procure(order_id, shirts, revision))
            .await
    }

    async fn check(&self, order_id: &str, shirts: u32) -> anyhow::Result<()> {
        self.command(
            order_id,
            &CheckMaterials {
                order_id: order_id.into(),
                items: shirts_of(shirts),
                needed_by: String::new(),
            },
        )
        .await
    }

    async fn stock(&mut self, material: &str) -> anyhow::Result<StockLevel> {
        Ok(self
            .client
            .get_stock(GetStockRequest {
                material: material.into(),
            })
            .await?
            .into_inner())
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.svc.pool)
            .await
            .unwrap_or(-1)
    }
}

fn line(material: &str, quantity_per_unit: f64, scrap_percent: f64) -> BomLine {
    BomLine {
        material: material.into(),
        quantity_per_unit,
        scrap_percent,
    }
}

fn shirts_of(quantity: u32) -> Vec<ProductQuantity> {
    vec![ProductQuantity {
        product: "shirt".into(),
        quantity,
    }]
}

fn procure(order_id: &str, shirts: u32, revision: u32) -> ProcureMaterials {
    ProcureMaterials {
        order_id: order_id.into(),
        items: shirts_of(shirts),
        needed_by: String::new(),
        revision,
        materials_in_use: false,
        remake: false,
    }
}

fn in_days(days: u64) -> String {
    let date = Utc::now().date_naive() + Days::new(days);
    date.format("%Y-%m-%d").to_string()
}

async fn next<M: prost::Message + TypeName + Default>(
    reader: &mut SubjectReader,
) -> anyhow::Result<M> {
    reader.next_of_type(M::TYPE_NAME, WAIT).await?.decode()
}

#[tokio::test]
async fn an_amended_order_buys_the_difference_then_gives_back_the_surplus() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    procurement.seed().await?;
    let mut events = procurement.events().await?;
    let order = "o-amend";

    // Revision 1, 100 shirts: 153 m of fabric, 50 m from stock and 103 m
    // bought from FAST; 800 buttons from stock.
    procurement.procure(order, 100, 1).await?;
    let first_po: PurchaseOrderPlaced = next(&mut events).await?;
    assert_eq!(first_po.quantity, 103.0);
    let first: MaterialsOrdered = next(&mut events).await?;
    assert_eq!(first.revision, 1);
    assert_eq!(
        first.purchase_order_ids,
        std::slice::from_ref(&first_po.purchase_order_id)
    );
    assert!(first.adjustments.is_empty(), "{first:?}");

    // Revision 2, 150 shirts: 229.5 m. The order holds 153 m, so 76.5 m
    // are short; no stock or PO quantity is free, so FAST's MOQ of 100 m
    // is bought. 400 more buttons come from stock.
    procurement.procure(order, 150, 2).await?;
    let second_po: PurchaseOrderPlaced = next(&mut events).await?;
    assert_eq!(second_po.order_id, order);
    assert_eq!(
        (second_po.supplier.as_str(), second_po.material.as_str()),
        ("FAST", "fabric")
    );
    assert_eq!(second_po.quantity, 100.0);
    let seen = events
        .next_of_type(MaterialsOrdered::TYPE_NAME, WAIT)
        .await?;
    let second: MaterialsOrdered = seen.decode()?;
    assert_eq!(second.revision, 2);
    assert_eq!(
        second.purchase_order_ids,
        [
            first_po.purchase_order_id.clone(),
            second_po.purchase_order_id.clone()
        ]
    );
    assert_eq!(second.expected_ready_date, in_days(7));
    assert!(
        second
            .adjustments
            .iter()
            .any(|adjustment| adjustment.starts_with(&format!(
                "PO {} placed for 100 m fabric",
                second_po.purchase_order_id
            ))),
        "{:?}",
        second.adjustments
    );
    assert!(
        second
            .adjustments
            .contains(&"400 pcs button reserved from stock".to_owned()),
        "{:?}",
        second.adjustments
    );
    // The fact of revision 2 has the identity of that revision.
    let key = format!("materials:{order}:2");
    assert_eq!(
        seen.envelope()?.event_id,
        fact_id("procurement", MaterialsOrdered::TYPE_NAME, order, &key).to_string()
    );

    // Revision 2 re-sent: the same answer, nothing bought or reserved.
    procurement.repeat(order, &procure(order, 150, 2)).await?;
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM purchase_orders")
            .await,
        2
    );
    assert_eq!(procurement.stock("button").await?.reserved, 1_200.0);

    // Revision 3, 60 shirts: 91.8 m. 137.7 m to give back: the latest PO
    // (76.5 m for the order, nobody else on it) is cancelled, the first
    // gives 61.2 m but stays at FAST's minimum of 100 m; the stock
    // reservation is kept. 720 buttons are released.
    procurement.procure(order, 60, 3).await?;
    let third: MaterialsOrdered = next(&mut events).await?;
    // The next MaterialsOrdered on the bus is revision 3's: the repeat of
    // revision 2 carried the same event id and was dropped as a duplicate.
    assert_eq!(third.revision, 3);
    assert_eq!(
        third.purchase_order_ids,
        std::slice::from_ref(&first_po.purchase_order_id)
    );
    let expected = [
        "reservation of 720 pcs button released".to_owned(),
        format!(
            "PO {} cancelled (76.5 m fabric no longer needed)",
            second_po.purchase_order_id
        ),
        format!(
            "PO {} reduced 103 → 100 m fabric; 61.2 m fabric released from this order",
            first_po.purchase_order_id
        ),
    ];
    assert_eq!(third.adjustments, expected);
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM purchase_orders")
            .await,
        2
    );

    let cancelled = procurement
        .client
        .get_purchase_order(GetPurchaseOrderRequest {
            purchase_order_id: second_po.purchase_order_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(cancelled.status, "cancelled");
    let reduced = procurement
        .client
        .get_purchase_order(GetPurchaseOrderRequest {
            purchase_order_id: first_po.purchase_order_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(reduced.status, "open");
    assert_eq!(reduced.quantity, 100.0);
    assert_eq!(reduced.amount_minor, 50_000);
    assert_eq!(reduced.allocated, 41.8);
    assert_eq!(procurement.stock("button").await?.reserved, 480.0);
    let fabric = procurement.stock("fabric").await?;
    assert_eq!((fabric.reserved, fabric.on_order), (50.0, 100.0));

    // The reduced PO arrives and passes: the order has its 91.8 m and is
    // ready for revision 3; the rest of the lot is free stock.
    procurement
        .publish(
            WMS_GOODS_RECEIVED,
            "",
            &WmsGoodsReceived {
                purchase_order_id: first_po.purchase_order_id.clone(),
                material: "fabric".into(),
                quantity: 100.0,
                lot: "L1".into(),
                at: None,
            },
        )
        .await?;
    next::<GoodsReceived>(&mut events).await?;
    procurement
        .publish(
            "gendan.evt.quality.incoming_inspection_passed",
            order,
            &IncomingInspectionPassed {
                order_id: order.into(),
                purchase_order_id: first_po.purchase_order_id.clone(),
                lot: "L1".into(),
                inspection_id: "insp-1".into(),
            },
        )
        .await?;
    let ready: MaterialsReady = next(&mut events).await?;
    assert_eq!(ready.order_id, order);
    assert_eq!(
        (ready.revision, ready.ready_on.as_str()),
        (3, in_days(0).as_str())
    );
    let fabric = procurement.stock("fabric").await?;
    assert_eq!((fabric.on_hand, fabric.reserved), (150.0, 91.8));

    // Checked again as it stands, the order holds all it needs.
    procurement.check(order, 60).await?;
    let checked: MaterialsChecked = next(&mut events).await?;
    assert!(checked.shortages.is_empty(), "{checked:?}");
    assert_eq!(checked.earliest_material_date, in_days(0));
    procurement.stop().await
}

#[tokio::test]
async fn an_order_served_from_stock_counts_its_own_and_is_ready_again_when_amended_down()
-> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    procurement.seed().await?;
    let mut events = procurement.events().await?;
    let order = "o-stock";

    // 30 shirts: 45.9 m of fabric and 240 buttons, all from stock.
    procurement.procure(order, 30, 1).await?;
    let first: MaterialsOrdered = next(&mut events).await?;
    assert_eq!(first.revision, 1);
    assert!(first.purchase_order_ids.is_empty(), "{first:?}");
    let ready: MaterialsReady = next(&mut events).await?;
    assert_eq!(
        (ready.revision, ready.ready_on.as_str()),
        (1, in_days(0).as_str())
    );

    // Checked again for 32 shirts (48.96 m): the 45.9 m it holds are its
    // own, and the 3.06 m more fit in the 4.1 m nobody holds.
    procurement.check(order, 32).await?;
    let checked: MaterialsChecked = next(&mut events).await?;
    assert_eq!(checked.order_id, order);
    assert!(checked.problem.is_empty(), "{checked:?}");
    assert!(checked.shortages.is_empty(), "{checked:?}");
    assert_eq!(checked.earliest_material_date, in_days(0));

    // Another order with the same items finds that stock held.
    procurement.check("o-other", 32).await?;
    let other: MaterialsChecked = next(&mut events).await?;
    assert_eq!(other.order_id, "o-other");
    assert_eq!(other.shortages.len(), 1, "{other:?}");
    let fabric = &other.shortages[0];
    assert_eq!(fabric.material, "fabric");
    assert_eq!(
        (fabric.required, fabric.free_stock, fabric.shortage),
        (48.96, 4.1, 44.86)
    );

    // Amended down to 20 shirts: the reservations shrink to 30.6 m and 160
    // buttons, and the order is ready for revision 2 at once.
    procurement.procure(order, 20, 2).await?;
    let second: MaterialsOrdered = next(&mut events).await?;
    assert_eq!(second.revision, 2);
    assert!(second.purchase_order_ids.is_empty(), "{second:?}");
    assert_eq!(second.expected_ready_date, in_days(0));
    assert_eq!(
        second.adjustments,
        [
            "reservation of 80 pcs button released",
            "reservation of 15.3 m fabric released"
        ]
    );
    let ready: MaterialsReady = next(&mut events).await?;
    assert_eq!(
        (ready.revision, ready.ready_on.as_str()),
        (2, in_days(0).as_str())
    );
    assert_eq!(procurement.stock("fabric").await?.reserved, 30.6);
    assert_eq!(procurement.stock("button").await?.reserved, 160.0);

    // Revision 1 arriving late changes nothing.
    procurement.repeat(order, &procure(order, 30, 1)).await?;
    assert_eq!(procurement.stock("fabric").await?.reserved, 30.6);
    let status = procurement
        .client
        .get_order_materials(GetOrderMaterialsRequest {
            order_id: order.into(),
        })
        .await?
        .into_inner();
    assert_eq!(status.status, "ready");
    assert_eq!(status.ready_on, in_days(0));

    // An amendment that cannot be procured is refused and the applied
    // revision stays.
    procurement
        .command(
            order,
            &ProcureMaterials {
                materials_in_use: false,
                remake: false,
                order_id: order.into(),
                items: vec![ProductQuantity {
                    product: "kimono".into(),
                    quantity: 1,
                }],
                needed_by: String::new(),
                revision: 3,
            },
        )
        .await?;
    let failed: ProcurementFailed = next(&mut events).await?;
    assert!(failed.reason.contains("kimono"), "{}", failed.reason);
    assert_eq!(
        procurement
            .count("SELECT revision::int8 FROM procurements WHERE order_id = 'o-stock'")
            .await,
        2
    );
    assert_eq!(procurement.stock("fabric").await?.reserved, 30.6);

    // Amended down again once production had begun: the material is in
    // the goods, so no reservation goes back to free stock.
    procurement
        .command(
            order,
            &ProcureMaterials {
                materials_in_use: true,
                ..procure(order, 10, 3)
            },
        )
        .await?;
    let third: MaterialsOrdered = next(&mut events).await?;
    assert_eq!(third.revision, 3);
    assert!(
        third.adjustments.iter().all(|a| !a.contains("released")),
        "{:?}",
        third.adjustments
    );
    assert_eq!(procurement.stock("fabric").await?.reserved, 30.6);
    assert_eq!(procurement.stock("button").await?.reserved, 160.0);

    // The lot is scrapped and made again: what the order held went into
    // it (stock on hand goes down by it), and 10 shirts' worth is reserved
    // afresh from free stock.
    let fabric_before = procurement.stock("fabric").await?;
    procurement
        .command(
            order,
            &ProcureMaterials {
                remake: true,
                ..procure(order, 10, 4)
            },
        )
        .await?;
    let fourth: MaterialsOrdered = next(&mut events).await?;
    assert_eq!(fourth.revision, 4);
    assert!(
        fourth
            .adjustments
            .iter()
            .any(|a| a.contains("consumed by the scrapped lot")),
        "{:?}",
        fourth.adjustments
    );
    let fabric = procurement.stock("fabric").await?;
    assert!(
        (fabric.on_hand - (fabric_before.on_hand - 30.6)).abs() < 1e-9,
        "{fabric:?} after {fabric_before:?}"
    );
    assert!(
        (fabric.reserved - (fabric_before.reserved - 30.6 + 15.3)).abs() < 1e-9,
        "{fabric:?}"
    );
    procurement.stop().await
}
