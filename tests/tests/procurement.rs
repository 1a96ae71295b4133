//! The procurement service against real NATS and PostgreSQL: material
//! checks with shortages and the earliest date, idempotent procurement, the
//! receipt path from the WMS through incoming inspection to MaterialsReady,
//! a failed inspection re-ordered, supplier delays, cancellation,
//! `RestateFact` (the ready fact again, or what is awaited), and gRPC
//! validation that names the field and writes nothing.

use std::time::Duration;

use chrono::{Days, Utc};
use gendan_messaging::{Bus, Cause, Outgoing, fact_id};
use gendan_procurement::{Application, WMS_GOODS_RECEIVED};
use gendan_proto::TypeName;
use gendan_proto::v1::procurement_service_client::ProcurementServiceClient;
use gendan_proto::v1::{
    BillOfMaterials, BomLine, CancelMaterials, CheckMaterials, ConfirmPurchaseOrderRequest,
    GetBillOfMaterialsRequest, GetOrderMaterialsRequest, GetPurchaseOrderRequest, GetStockRequest,
    GoodsReceived, IncomingInspectionFailed, IncomingInspectionPassed, Material,
    MaterialsCancelled, MaterialsChecked, MaterialsDelayed, MaterialsOrdered, MaterialsReady,
    ProcureMaterials, ProcurementFailed, ProductQuantity, PurchaseOrderPlaced, RestateFact,
    SetStockRequest, StatusReported, Supplier, SupplierOffer, WmsGoodsReceived,
};
use gendan_tests::{SubjectReader, TestDb, TestNats, service_settings};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);

struct Procurement {
    nats: TestNats,
    _db: TestDb,
    bus: Bus,
    pool: PgPool,
    client: ProcurementServiceClient<Channel>,
    cancel: CancellationToken,
    task: JoinHandle<gendan_procurement::Result<()>>,
}

impl Procurement {
    async fn start() -> anyhow::Result<Self> {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await?;
        let db = TestDb::create().await?;
        let app = Application::build(service_settings(&db, &nats, "procurement")).await?;
        let port = app.port();
        let pool = app.pool().clone();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        let client = ProcurementServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
        let bus = Bus::connect(&nats.url, "test").await?;
        Ok(Procurement {
            nats,
            _db: db,
            bus,
            pool,
            client,
            cancel,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.task.await??;
        Ok(())
    }

    /// Fabric (m) and buttons (pcs); a shirt takes 1.5 m of fabric with 2 %
    /// scrap and 8 buttons. Fabric: FAST (7 days, 5.00/m, MOQ 100 m) and
    /// CHEAP (20 days, 3.00/m). Buttons: CHEAP only. Stock: 50 m of fabric,
    /// 10 000 buttons.
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
        SubjectReader::open(&self.nats.url, "GENDAN_EVT", "gendan.evt.procurement.>").await
    }

    /// Sends a command; returns its message id.
    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<String> {
        let message = Outgoing::command(
            "test",
            "procurement",
            order_id,
            payload,
            &Cause::root(order_id),
        );
        self.bus.publish(&message).await?;
        Ok(message.event_id().to_owned())
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
        self.bus.publish(&message).await?;
        Ok(())
    }

    async fn procure(&self, order_id: &str, shirts: u32) -> anyhow::Result<String> {
        self.command(
            order_id,
            &ProcureMaterials {
                materials_in_use: false,
                remake: false,
                order_id: order_id.into(),
                items: shirts_of(shirts),
                needed_by: String::new(),
                revision: 0,
            },
        )
        .await
    }

    /// Asks for the order's `MaterialsReady` again, as an overdue saga step
    /// does, and waits until procurement has handled it.
    async fn restate(&self, order_id: &str) -> anyhow::Result<()> {
        let command = restate_fact(order_id, MaterialsReady::TYPE_NAME);
        gendan_tests::repeat_command(&self.bus, &self.pool, "procurement", order_id, &command).await
    }

    async fn receive(&self, po_id: &str, lot: &str, quantity: f64) -> anyhow::Result<()> {
        self.publish(
            WMS_GOODS_RECEIVED,
            "",
            &WmsGoodsReceived {
                purchase_order_id: po_id.into(),
                material: "fabric".into(),
                quantity,
                lot: lot.into(),
                at: None,
            },
        )
        .await
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
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

fn in_days(days: u64) -> String {
    let date = Utc::now().date_naive() + Days::new(days);
    date.format("%Y-%m-%d").to_string()
}

async fn next<M: prost::Message + TypeName + Default>(
    reader: &mut SubjectReader,
) -> anyhow::Result<M> {
    reader.next_of_type(M::TYPE_NAME, WAIT).await?.decode()
}

/// The next event of type `M` and its event id.
async fn next_with_id<M: prost::Message + TypeName + Default>(
    reader: &mut SubjectReader,
) -> anyhow::Result<(M, String)> {
    let seen = reader.next_of_type(M::TYPE_NAME, WAIT).await?;
    Ok((seen.decode()?, seen.envelope()?.event_id))
}

fn restate_fact(order_id: &str, awaited: &str) -> RestateFact {
    RestateFact {
        order_id: order_id.into(),
        step: "materials_ready".into(),
        awaited: awaited.into(),
        revision: 0,
    }
}

#[tokio::test]
async fn material_check_reports_shortages_and_the_earliest_date() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    procurement.seed().await?;
    let mut events = procurement.events().await?;

    // 100 shirts: 100 x 1.5 x 1.02 = 153 m of fabric against 50 in stock:
    // 103 m short, FAST delivers in 7 days. 800 buttons are in stock.
    procurement
        .command(
            "o-check",
            &CheckMaterials {
                order_id: "o-check".into(),
                items: shirts_of(100),
                needed_by: String::new(),
            },
        )
        .await?;
    let checked: MaterialsChecked = next(&mut events).await?;
    assert_eq!(checked.order_id, "o-check");
    assert!(checked.problem.is_empty(), "{checked:?}");
    assert_eq!(checked.shortages.len(), 1, "{checked:?}");
    let fabric = &checked.shortages[0];
    assert_eq!(fabric.material, "fabric");
    assert_eq!(fabric.unit, "m");
    assert_eq!(fabric.required, 153.0);
    assert_eq!(fabric.free_stock, 50.0);
    assert_eq!(fabric.on_order, 0.0);
    assert_eq!(fabric.shortage, 103.0);
    assert_eq!(fabric.earliest_date, in_days(7));
    assert_eq!(checked.earliest_material_date, in_days(7));

    // Ten shirts are covered from stock: material is in today.
    procurement
        .command(
            "o-small",
            &CheckMaterials {
                order_id: "o-small".into(),
                items: shirts_of(10),
                needed_by: String::new(),
            },
        )
        .await?;
    let checked: MaterialsChecked = next(&mut events).await?;
    assert!(checked.shortages.is_empty(), "{checked:?}");
    assert_eq!(checked.earliest_material_date, in_days(0));

    // A product without a BOM is an answer with the problem, not an error.
    procurement
        .command(
            "o-kimono",
            &CheckMaterials {
                order_id: "o-kimono".into(),
                items: vec![ProductQuantity {
                    product: "kimono".into(),
                    quantity: 3,
                }],
                needed_by: String::new(),
            },
        )
        .await?;
    let checked: MaterialsChecked = next(&mut events).await?;
    assert_eq!(checked.order_id, "o-kimono");
    assert!(checked.problem.contains("kimono"), "{checked:?}");

    // A check changes nothing.
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM purchase_orders")
            .await,
        0
    );
    assert_eq!(
        procurement.count("SELECT count(*) FROM reservations").await,
        0
    );
    procurement.stop().await
}

#[tokio::test]
async fn procure_materials_twice_places_one_set_of_purchase_orders() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    procurement.seed().await?;
    let mut events = procurement.events().await?;

    procurement.procure("o-twice", 100).await?;
    let placed: PurchaseOrderPlaced = next(&mut events).await?;
    assert_eq!(placed.order_id, "o-twice");
    assert_eq!(placed.supplier, "FAST");
    assert_eq!(placed.material, "fabric");
    // 103 m short, MOQ 100: 103 m at 5.00 = 515.00.
    assert_eq!(placed.quantity, 103.0);
    assert_eq!(placed.amount_minor, 51_500);
    assert_eq!(placed.currency, "USD");
    assert_eq!(placed.expected_date, in_days(7));
    let first: MaterialsOrdered = next(&mut events).await?;
    assert_eq!(
        first.purchase_order_ids,
        std::slice::from_ref(&placed.purchase_order_id)
    );
    assert_eq!(first.expected_ready_date, in_days(7));

    // The repeat answers with the same fact (one event id: nothing new on
    // the bus) and places nothing.
    let repeat = procurement.procure("o-twice", 100).await?;
    gendan_tests::handled(&procurement.pool, &repeat).await?;
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM purchase_orders")
            .await,
        1
    );

    let stock = procurement
        .client
        .get_stock(GetStockRequest {
            material: "fabric".into(),
        })
        .await?
        .into_inner();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.free, stock.on_order),
        (50.0, 50.0, 0.0, 103.0)
    );
    let status = procurement
        .client
        .get_order_materials(GetOrderMaterialsRequest {
            order_id: "o-twice".into(),
        })
        .await?
        .into_inner();
    assert_eq!(status.status, "ordered");
    assert_eq!(status.requirements.len(), 2);
    let fabric = status
        .requirements
        .iter()
        .find(|r| r.material == "fabric")
        .unwrap();
    assert_eq!(
        (fabric.required, fabric.reserved, fabric.outstanding),
        (153.0, 50.0, 103.0)
    );
    assert_eq!(status.reservations.len(), 2);
    assert_eq!(status.purchase_orders.len(), 1);

    // A stock count below what is reserved is refused, and changes nothing.
    let refused = procurement
        .client
        .set_stock(SetStockRequest {
            material: "fabric".into(),
            on_hand: 10.0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        procurement
            .count("SELECT on_hand_milli FROM stock WHERE material = 'fabric'")
            .await,
        50_000
    );

    // A second order finds no free stock and o-twice's PO wholly allocated
    // (103 m ordered, 103 m short), so it buys for itself.
    procurement.procure("o-next", 10).await?;
    let placed: PurchaseOrderPlaced = next(&mut events).await?;
    assert_eq!(placed.order_id, "o-next");
    // 15.3 m short, below FAST's MOQ of 100 m.
    assert_eq!(placed.quantity, 100.0);
    next::<MaterialsOrdered>(&mut events).await?;

    // A third order is covered by o-next's MOQ surplus on order.
    procurement.procure("o-third", 10).await?;
    let ordered: MaterialsOrdered = next(&mut events).await?;
    assert_eq!(ordered.order_id, "o-third");
    assert_eq!(
        ordered.purchase_order_ids,
        std::slice::from_ref(&placed.purchase_order_id)
    );
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM purchase_orders")
            .await,
        2
    );
    procurement.stop().await
}

#[tokio::test]
async fn receipt_and_passed_inspection_make_materials_ready_once() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    procurement.seed().await?;
    let mut events = procurement.events().await?;

    procurement.procure("o-full", 100).await?;
    let placed: PurchaseOrderPlaced = next(&mut events).await?;
    next::<MaterialsOrdered>(&mut events).await?;
    let po_id = placed.purchase_order_id.clone();

    // The supplier confirms three days late: the order hears of it.
    let confirmed = procurement
        .client
        .confirm_purchase_order(ConfirmPurchaseOrderRequest {
            purchase_order_id: po_id.clone(),
            confirmed_eta: in_days(10),
        })
        .await?
        .into_inner();
    assert_eq!(confirmed.status, "confirmed");
    assert_eq!(confirmed.confirmed_eta, in_days(10));
    let delayed: MaterialsDelayed = next(&mut events).await?;
    assert_eq!(delayed.order_id, "o-full");
    assert_eq!(delayed.purchase_order_id, po_id);
    assert_eq!(delayed.expected_ready_date, in_days(10));

    // The goods arrive in two lots; each is announced for inspection.
    procurement.receive(&po_id, "L1", 60.0).await?;
    procurement.receive(&po_id, "L2", 43.0).await?;
    let first: GoodsReceived = next(&mut events).await?;
    assert_eq!(
        (first.order_id.as_str(), first.lot.as_str(), first.quantity),
        ("o-full", "L1", 60.0)
    );
    assert_eq!(first.supplier, "FAST");
    let second: GoodsReceived = next(&mut events).await?;
    assert_eq!(second.lot, "L2");

    let pass = |lot: &str| IncomingInspectionPassed {
        order_id: "o-full".into(),
        purchase_order_id: po_id.clone(),
        lot: lot.into(),
        inspection_id: format!("insp-{lot}"),
    };
    let subject = "gendan.evt.quality.incoming_inspection_passed";
    procurement.publish(subject, "o-full", &pass("L1")).await?;
    procurement.publish(subject, "o-full", &pass("L2")).await?;
    let ready: MaterialsReady = next(&mut events).await?;
    assert_eq!(ready.order_id, "o-full");
    assert_eq!(ready.ready_on, in_days(0));

    // The same result again (a new message id) has no second effect.
    procurement.publish(subject, "o-full", &pass("L2")).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    while let Some(seen) = events.next(Duration::from_millis(500)).await? {
        assert_ne!(seen.type_name(), MaterialsReady::TYPE_NAME);
    }

    let status = procurement
        .client
        .get_order_materials(GetOrderMaterialsRequest {
            order_id: "o-full".into(),
        })
        .await?
        .into_inner();
    assert_eq!(status.status, "ready");
    let po = &status.purchase_orders[0];
    assert_eq!(po.status, "received");
    assert_eq!(po.accepted, 103.0);
    assert_eq!(po.lots.len(), 2);
    assert!(po.lots.iter().all(|lot| lot.inspection_status == "passed"));
    let fabric = status
        .requirements
        .iter()
        .find(|r| r.material == "fabric")
        .unwrap();
    assert_eq!((fabric.reserved, fabric.outstanding), (153.0, 0.0));

    // A received PO cannot be confirmed any more.
    let late = procurement
        .client
        .confirm_purchase_order(ConfirmPurchaseOrderRequest {
            purchase_order_id: po_id.clone(),
            confirmed_eta: in_days(20),
        })
        .await
        .unwrap_err();
    assert_eq!(late.code(), tonic::Code::FailedPrecondition);

    // A receipt for a PO nobody placed is dead-lettered with the reason.
    let mut dead = SubjectReader::open(
        &procurement.nats.url,
        "GENDAN_DLQ",
        "gendan.dlq.procurement-wms",
    )
    .await?;
    let unknown = uuid::Uuid::now_v7().to_string();
    procurement.receive(&unknown, "L9", 1.0).await?;
    let letter = dead
        .next(WAIT)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no dead letter"))?;
    let reason = letter.header("Gendan-Dlq-Reason").unwrap_or_default();
    assert!(reason.contains("unknown purchase order"), "{reason}");
    procurement.stop().await
}

#[tokio::test]
async fn restate_fact_repeats_materials_ready_or_reports_what_is_awaited() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    procurement.seed().await?;
    let mut events = procurement.events().await?;

    // Ten shirts are covered from stock: ready at once, the fact of
    // revision 1.
    procurement.procure("o-stocked", 10).await?;
    let (ready, ready_id) = next_with_id::<MaterialsReady>(&mut events).await?;
    assert_eq!(ready.revision, 1);
    let key = "materials_ready:o-stocked:1";
    assert_eq!(
        ready_id,
        fact_id("procurement", MaterialsReady::TYPE_NAME, "o-stocked", key).to_string()
    );
    // Asked again, it is announced under that id again: the bus drops it.
    procurement.restate("o-stocked").await?;

    // A hundred shirts wait for a purchase order nobody confirmed.
    procurement.procure("o-waiting", 100).await?;
    let placed: PurchaseOrderPlaced = next(&mut events).await?;
    procurement.restate("o-waiting").await?;
    let reported: StatusReported = next(&mut events).await?;
    // The first status is o-waiting's: o-stocked's fact was restated.
    assert_eq!(reported.order_id, "o-waiting");
    assert_eq!(
        (reported.step.as_str(), reported.awaited.as_str()),
        ("materials_ready", MaterialsReady::TYPE_NAME)
    );
    assert_eq!(
        reported.status,
        format!(
            "waiting for 1 purchase order: PO {} (fabric, FAST) due {} not confirmed",
            placed.purchase_order_id, placed.expected_date
        )
    );

    // The goods are at the dock: their incoming inspection is awaited.
    procurement
        .receive(&placed.purchase_order_id, "L-1", placed.quantity)
        .await?;
    next::<GoodsReceived>(&mut events).await?;
    procurement.restate("o-waiting").await?;
    let reported: StatusReported = next(&mut events).await?;
    assert_eq!(
        reported.status,
        "materials received, incoming inspection of lot L-1 pending"
    );

    // A fact procurement does not announce is dead-lettered, the field named.
    let mut dead = SubjectReader::open(
        &procurement.nats.url,
        "GENDAN_DLQ",
        "gendan.dlq.procurement-commands",
    )
    .await?;
    let shipped = restate_fact("o-waiting", "gendan.v1.Shipped");
    procurement.command("o-waiting", &shipped).await?;
    let reason = dead
        .next(WAIT)
        .await?
        .and_then(|seen| seen.header("Gendan-Dlq-Reason"))
        .unwrap_or_default();
    assert!(reason.contains("invalid awaited"), "{reason}");
    procurement.stop().await
}

#[tokio::test]
async fn a_failed_inspection_is_returned_and_reordered() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    procurement.seed().await?;
    let mut events = procurement.events().await?;

    procurement.procure("o-reject", 100).await?;
    let placed: PurchaseOrderPlaced = next(&mut events).await?;
    next::<MaterialsOrdered>(&mut events).await?;
    procurement
        .receive(&placed.purchase_order_id, "BAD-1", 103.0)
        .await?;
    next::<GoodsReceived>(&mut events).await?;

    procurement
        .publish(
            "gendan.evt.quality.incoming_inspection_failed",
            "o-reject",
            &IncomingInspectionFailed {
                order_id: "o-reject".into(),
                purchase_order_id: placed.purchase_order_id.clone(),
                lot: "BAD-1".into(),
                inspection_id: "insp-1".into(),
                nonconformance_id: "nc-7".into(),
            },
        )
        .await?;
    let replacement: PurchaseOrderPlaced = next(&mut events).await?;
    assert_eq!(replacement.order_id, "o-reject");
    assert_ne!(replacement.purchase_order_id, placed.purchase_order_id);
    // Same rule: FAST is quickest; 103 m is above its MOQ.
    assert_eq!(replacement.supplier, "FAST");
    assert_eq!(replacement.quantity, 103.0);
    let delayed: MaterialsDelayed = next(&mut events).await?;
    assert_eq!(delayed.order_id, "o-reject");
    assert_eq!(delayed.purchase_order_id, replacement.purchase_order_id);
    assert_eq!(delayed.expected_ready_date, in_days(7));
    assert!(delayed.reason.contains("nc-7"), "{}", delayed.reason);

    let original = procurement
        .client
        .get_purchase_order(GetPurchaseOrderRequest {
            purchase_order_id: placed.purchase_order_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(original.status, "received");
    assert_eq!(original.rejected, 103.0);
    assert!(original.lots[0].returned_to_supplier);
    assert_eq!(original.lots[0].inspection_status, "failed");
    let new_po = procurement
        .client
        .get_purchase_order(GetPurchaseOrderRequest {
            purchase_order_id: replacement.purchase_order_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(new_po.replaces, placed.purchase_order_id);
    assert_eq!(new_po.allocated, 103.0);
    // Rejected goods never entered stock.
    assert_eq!(
        procurement
            .count("SELECT on_hand_milli FROM stock WHERE material = 'fabric'")
            .await,
        50_000
    );

    // The replacement arrives and passes: now the order is ready.
    procurement
        .receive(&replacement.purchase_order_id, "GOOD-1", 103.0)
        .await?;
    next::<GoodsReceived>(&mut events).await?;
    procurement
        .publish(
            "gendan.evt.quality.incoming_inspection_passed",
            "o-reject",
            &IncomingInspectionPassed {
                order_id: "o-reject".into(),
                purchase_order_id: replacement.purchase_order_id.clone(),
                lot: "GOOD-1".into(),
                inspection_id: "insp-2".into(),
            },
        )
        .await?;
    let ready: MaterialsReady = next(&mut events).await?;
    assert_eq!(ready.order_id, "o-reject");
    procurement.stop().await
}

#[tokio::test]
async fn cancel_materials_releases_reservations_and_cancels_open_pos() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    procurement.seed().await?;
    let mut events = procurement.events().await?;

    procurement.procure("o-cancel", 100).await?;
    next::<MaterialsOrdered>(&mut events).await?;
    let cancel = CancelMaterials {
        order_id: "o-cancel".into(),
        reason: "customer cancelled".into(),
    };
    procurement.command("o-cancel", &cancel).await?;
    let cancelled: MaterialsCancelled = next(&mut events).await?;
    assert_eq!(cancelled.purchase_orders_cancelled, 1);
    assert_eq!(cancelled.reservations_released, 2);
    let stock = procurement
        .client
        .get_stock(GetStockRequest {
            material: "fabric".into(),
        })
        .await?
        .into_inner();
    assert_eq!(
        (stock.reserved, stock.free, stock.on_order),
        (0.0, 50.0, 0.0)
    );

    // Again: the same fact under the same event id (nothing new on the
    // bus), nothing released twice.
    gendan_tests::repeat_command(
        &procurement.bus,
        &procurement.pool,
        "procurement",
        "o-cancel",
        &cancel,
    )
    .await?;
    let stock_again = procurement
        .client
        .clone()
        .get_stock(GetStockRequest {
            material: "fabric".into(),
        })
        .await?
        .into_inner();
    assert_eq!(stock_again, stock);

    // A late ProcureMaterials buys nothing.
    procurement.procure("o-cancel", 100).await?;
    let failed: ProcurementFailed = next(&mut events).await?;
    assert!(failed.reason.contains("cancelled"), "{}", failed.reason);
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM purchase_orders WHERE status <> 'cancelled'")
            .await,
        0
    );

    // A cancel before any procurement is answered and remembered.
    procurement
        .command(
            "o-never",
            &CancelMaterials {
                order_id: "o-never".into(),
                reason: "withdrawn in review".into(),
            },
        )
        .await?;
    let never: MaterialsCancelled = next(&mut events).await?;
    assert_eq!(
        (never.purchase_orders_cancelled, never.reservations_released),
        (0, 0)
    );

    // A product without BOM cannot be procured: an answer, nothing stored.
    procurement
        .command(
            "o-kimono",
            &ProcureMaterials {
                materials_in_use: false,
                remake: false,
                order_id: "o-kimono".into(),
                items: vec![ProductQuantity {
                    product: "kimono".into(),
                    quantity: 1,
                }],
                needed_by: String::new(),
                revision: 0,
            },
        )
        .await?;
    let failed: ProcurementFailed = next(&mut events).await?;
    assert!(failed.reason.contains("kimono"), "{}", failed.reason);
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM procurements WHERE order_id = 'o-kimono'")
            .await,
        0
    );
    procurement.stop().await
}

#[tokio::test]
async fn grpc_validation_names_the_field_and_writes_nothing() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    procurement.seed().await?;
    let client = &mut procurement.client;

    let status = client
        .set_bill_of_materials(BillOfMaterials {
            product: "jacket".into(),
            lines: vec![line("fabric", 2.0, 0.0), line("zipper", 1.0, 0.0)],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("lines[1].material"),
        "{}",
        status.message()
    );
    let missing = client
        .get_bill_of_materials(GetBillOfMaterialsRequest {
            product: "jacket".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let status = client
        .set_bill_of_materials(BillOfMaterials {
            product: "shirt".into(),
            lines: vec![line("fabric", 1.0, 120.0)],
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("lines[0].scrap_percent"),
        "{}",
        status.message()
    );
    // The stored BOM is unchanged.
    let shirt = client
        .get_bill_of_materials(GetBillOfMaterialsRequest {
            product: "shirt".into(),
        })
        .await?
        .into_inner();
    assert_eq!(shirt.lines.len(), 2);
    assert_eq!(shirt.lines[0].scrap_percent, 2.0);

    let cases: Vec<(tonic::Status, &str)> = vec![
        (
            client
                .upsert_supplier(Supplier {
                    code: "EURO".into(),
                    name: String::new(),
                    currency: "euro".into(),
                })
                .await
                .unwrap_err(),
            "currency",
        ),
        (
            client
                .upsert_material(Material {
                    code: "thread".into(),
                    name: String::new(),
                    unit: " ".into(),
                })
                .await
                .unwrap_err(),
            "unit",
        ),
        (
            client
                .upsert_supplier_offer(SupplierOffer {
                    supplier: "FAST".into(),
                    material: "button".into(),
                    lead_time_days: 3,
                    unit_price_minor: -5,
                    minimum_order_quantity: 0.0,
                    currency: String::new(),
                })
                .await
                .unwrap_err(),
            "unit_price_minor",
        ),
        (
            client
                .upsert_supplier_offer(SupplierOffer {
                    supplier: "NOBODY".into(),
                    material: "button".into(),
                    lead_time_days: 3,
                    unit_price_minor: 5,
                    minimum_order_quantity: 0.0,
                    currency: String::new(),
                })
                .await
                .unwrap_err(),
            "supplier",
        ),
        (
            client
                .set_stock(SetStockRequest {
                    material: "fabric".into(),
                    on_hand: -1.0,
                })
                .await
                .unwrap_err(),
            "on_hand",
        ),
        (
            client
                .confirm_purchase_order(ConfirmPurchaseOrderRequest {
                    purchase_order_id: "po-1".into(),
                    confirmed_eta: in_days(3),
                })
                .await
                .unwrap_err(),
            "purchase_order_id",
        ),
        (
            client
                .confirm_purchase_order(ConfirmPurchaseOrderRequest {
                    purchase_order_id: uuid::Uuid::now_v7().to_string(),
                    confirmed_eta: "next week".into(),
                })
                .await
                .unwrap_err(),
            "confirmed_eta",
        ),
        (
            client
                .get_order_materials(GetOrderMaterialsRequest {
                    order_id: " ".into(),
                })
                .await
                .unwrap_err(),
            "order_id",
        ),
    ];
    for (status, field) in cases {
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}");
        assert!(
            status.message().contains(&format!("invalid {field}")),
            "{field}: {}",
            status.message()
        );
    }

    for status in [
        client
            .get_stock(GetStockRequest {
                material: "zipper".into(),
            })
            .await
            .unwrap_err(),
        client
            .get_order_materials(GetOrderMaterialsRequest {
                order_id: "o-unknown".into(),
            })
            .await
            .unwrap_err(),
        client
            .confirm_purchase_order(ConfirmPurchaseOrderRequest {
                purchase_order_id: uuid::Uuid::now_v7().to_string(),
                confirmed_eta: in_days(3),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), tonic::Code::NotFound, "{}", status.message());
    }

    assert_eq!(
        procurement
            .count("SELECT count(*) FROM suppliers WHERE code = 'EURO'")
            .await,
        0
    );
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM supplier_offers WHERE material = 'button'")
            .await,
        1
    );
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM materials WHERE code = 'thread'")
            .await,
        0
    );
    assert_eq!(
        procurement
            .count("SELECT on_hand_milli FROM stock WHERE material = 'fabric'")
            .await,
        50_000
    );
    procurement.stop().await
}
