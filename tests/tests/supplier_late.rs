//! Chasing late suppliers, against real NATS and PostgreSQL on a manual
//! clock: a PO never confirmed, or not received by its date, is announced
//! late once per missed date; a late PO is re-sourced from the next
//! supplier (once, however often asked) or its delay accepted (which arms a
//! chase of the new date); invalid commands are dead-lettered naming the
//! field.
//!
//! The catalogue: fabric from FAST (7 days) or SLOW (20 days), buttons from
//! FAST only (5 days); a shirt takes 1 m of fabric and 2 buttons; nothing in
//! stock, so 100 shirts buy 100 m of fabric and 200 buttons from FAST.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use gendan_messaging::{Cause, Outgoing};
use gendan_procurement::chasing::ChaseWorker;
use gendan_procurement::{Application, Clock as _, ManualClock, Options, WMS_GOODS_RECEIVED};
use gendan_proto::TypeName;
use gendan_proto::v1::procurement_service_client::ProcurementServiceClient;
use gendan_proto::v1::{
    AcceptSupplierDelay, BillOfMaterials, BomLine, ConfirmPurchaseOrderRequest,
    GetPurchaseOrderRequest, GetStockRequest, GoodsReceived, Material, MaterialsDelayed,
    MaterialsOrdered, MaterialsResourced, ProcureMaterials, ProductQuantity, PurchaseOrderLate,
    PurchaseOrderPlaced, ResourceMaterials, Supplier, SupplierDelayAccepted, SupplierOffer,
    WmsGoodsReceived,
};
use gendan_tests::{Running, SubjectReader};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);

struct Procurement {
    svc: Running,
    client: ProcurementServiceClient<Channel>,
    clock: ManualClock,
    options: Options,
    /// The clock's first day: every date of a test is counted from it.
    start: NaiveDate,
}

impl Procurement {
    async fn start() -> anyhow::Result<Self> {
        let clock = ManualClock::new(Utc::now());
        let start = clock.now().date_naive();
        let options = Options {
            clock: Arc::new(clock.clone()),
            confirm_within_days: 2,
            chase_poll: Duration::from_millis(50),
        };
        let with = options.clone();
        let svc = Running::start("procurement", |settings| async move {
            Application::build(settings)
                .await
                .map(|app| app.with_options(with))
        })
        .await?;
        let client = ProcurementServiceClient::connect(svc.endpoint()).await?;
        let mut procurement = Procurement {
            svc,
            client,
            clock,
            options,
            start,
        };
        procurement.seed().await?;
        Ok(procurement)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.svc.stop().await
    }

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
        for code in ["FAST", "SLOW"] {
            self.client
                .upsert_supplier(Supplier {
                    code: code.into(),
                    name: String::new(),
                    currency: "USD".into(),
                })
                .await?;
        }
        for (supplier, material, lead, price) in [
            ("FAST", "fabric", 7, 500),
            ("SLOW", "fabric", 20, 300),
            ("FAST", "button", 5, 5),
        ] {
            self.client
                .upsert_supplier_offer(SupplierOffer {
                    supplier: supplier.into(),
                    material: material.into(),
                    lead_time_days: lead,
                    unit_price_minor: price,
                    minimum_order_quantity: 0.0,
                    currency: String::new(),
                })
                .await?;
        }
        self.client
            .set_bill_of_materials(BillOfMaterials {
                product: "shirt".into(),
                lines: vec![
                    BomLine {
                        material: "fabric".into(),
                        quantity_per_unit: 1.0,
                        scrap_percent: 0.0,
                    },
                    BomLine {
                        material: "button".into(),
                        quantity_per_unit: 2.0,
                        scrap_percent: 0.0,
                    },
                ],
            })
            .await?;
        Ok(())
    }

    async fn events(&self) -> anyhow::Result<SubjectReader> {
        SubjectReader::open(&self.svc.nats.url, "GENDAN_EVT", "gendan.evt.procurement.>").await
    }

    async fn dead_letters(&self) -> anyhow::Result<SubjectReader> {
        SubjectReader::open(
            &self.svc.nats.url,
            "GENDAN_DLQ",
            "gendan.dlq.procurement-commands",
        )
        .await
    }

    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let message = Outgoing::command(
            "test",
            "procurement",
            order_id,
            payload,
            &Cause::root(order_id),
        );
        self.svc.bus.publish(&message).await?;
        Ok(())
    }

    /// Sends a command again on purpose and waits until procurement has handled
    /// it: its answer is the same fact under the same event id, so nothing
    /// new reaches the bus.
    async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.repeat(order_id, payload).await
    }

    /// Procures `shirts` shirts for `order_id`; the POs placed, by material.
    async fn procure(
        &self,
        events: &mut SubjectReader,
        order_id: &str,
        shirts: u32,
    ) -> anyhow::Result<HashMap<String, PurchaseOrderPlaced>> {
        self.command(
            order_id,
            &ProcureMaterials {
                materials_in_use: false,
                remake: false,
                revision: 0,
                order_id: order_id.into(),
                items: vec![ProductQuantity {
                    product: "shirt".into(),
                    quantity: shirts,
                }],
                needed_by: String::new(),
            },
        )
        .await?;
        let mut placed = HashMap::new();
        loop {
            let seen = events
                .next(WAIT)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no MaterialsOrdered for {order_id}"))?;
            if seen.type_name() == PurchaseOrderPlaced::TYPE_NAME {
                let po: PurchaseOrderPlaced = seen.decode()?;
                placed.insert(po.material.clone(), po);
            }
            if seen.type_name() == MaterialsOrdered::TYPE_NAME {
                return Ok(placed);
            }
        }
    }

    /// The clock's day `n` (day 0 is the day the test started).
    fn day(&self, n: u64) -> String {
        (self.start + Days::new(n)).format("%Y-%m-%d").to_string()
    }

    fn advance_days(&self, days: i64) {
        self.clock.advance(chrono::Duration::days(days));
    }

    /// One chase pass beside the service's own worker; how many POs it
    /// chased. Zero after the worker has run proves nothing is repeated.
    async fn chase_pass(&self) -> anyhow::Result<usize> {
        let worker = ChaseWorker::new(
            self.svc.pool.clone(),
            self.options.calendar(),
            self.options.chase_poll,
        );
        Ok(worker.chase_due().await?)
    }

    async fn chases(&self, po_id: &str, lateness: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM purchase_order_chases \
             WHERE po_id = $1::uuid AND lateness = $2",
        )
        .bind(po_id)
        .bind(lateness)
        .fetch_one(&self.svc.pool)
        .await?)
    }

    async fn count(&self, sql: &'static str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(sql).fetch_one(&self.svc.pool).await?)
    }

    async fn po_status(&mut self, po_id: &str) -> anyhow::Result<String> {
        Ok(self
            .client
            .get_purchase_order(GetPurchaseOrderRequest {
                purchase_order_id: po_id.into(),
            })
            .await?
            .into_inner()
            .status)
    }
}

async fn next<M: prost::Message + TypeName + Default>(
    reader: &mut SubjectReader,
) -> anyhow::Result<M> {
    reader.next_of_type(M::TYPE_NAME, WAIT).await?.decode()
}

/// The next `PurchaseOrderLate` of `po_id` for `lateness`, skipping others.
async fn late_for(
    reader: &mut SubjectReader,
    po_id: &str,
    lateness: &str,
) -> anyhow::Result<PurchaseOrderLate> {
    loop {
        let late: PurchaseOrderLate = next(reader).await?;
        if late.purchase_order_id == po_id && late.lateness == lateness {
            return Ok(late);
        }
    }
}

/// The reason of the next dead letter.
async fn dead_letter_reason(reader: &mut SubjectReader) -> anyhow::Result<String> {
    let letter = reader
        .next(WAIT)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no dead letter"))?;
    Ok(letter.header("Gendan-Dlq-Reason").unwrap_or_default())
}

#[tokio::test]
async fn a_late_supplier_is_chased_once_per_missed_date() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    let mut events = procurement.events().await?;
    let placed = procurement.procure(&mut events, "o-chase", 100).await?;
    let fabric = placed["fabric"].purchase_order_id.clone();
    let button = placed["button"].purchase_order_id.clone();
    assert_eq!(placed["fabric"].expected_date, procurement.day(7));
    assert_eq!(procurement.chase_pass().await?, 0, "nothing is late yet");

    // Day 3: neither PO was confirmed by day 2.
    procurement.advance_days(3);
    let first: PurchaseOrderLate = next(&mut events).await?;
    let second: PurchaseOrderLate = next(&mut events).await?;
    let by_po: HashMap<String, PurchaseOrderLate> = [first, second]
        .into_iter()
        .map(|late| (late.purchase_order_id.clone(), late))
        .collect();
    let fabric_late = &by_po[&fabric];
    assert_eq!(fabric_late.order_id, "o-chase");
    assert_eq!(fabric_late.lateness, "unconfirmed");
    assert_eq!(fabric_late.due_date, procurement.day(2));
    assert_eq!(fabric_late.days_late, 1);
    assert_eq!(
        (fabric_late.supplier.as_str(), fabric_late.material.as_str()),
        ("FAST", "fabric")
    );
    assert_eq!(fabric_late.alternative_supplier, "SLOW");
    let button_late = &by_po[&button];
    assert_eq!(button_late.lateness, "unconfirmed");
    // Nobody else offers buttons.
    assert_eq!(button_late.alternative_supplier, "");
    // Exactly once: another pass finds nothing new.
    assert_eq!(procurement.chase_pass().await?, 0);
    assert_eq!(procurement.chases(&fabric, "unconfirmed").await?, 1);

    // The supplier confirms the fabric for day 7; the buttons all arrive
    // (the goods at the dock end the chase, inspected or not).
    procurement
        .client
        .confirm_purchase_order(ConfirmPurchaseOrderRequest {
            purchase_order_id: fabric.clone(),
            confirmed_eta: procurement.day(7),
        })
        .await?;
    procurement
        .svc
        .bus
        .publish(&Outgoing::new(
            WMS_GOODS_RECEIVED.to_owned(),
            "test",
            "",
            &WmsGoodsReceived {
                purchase_order_id: button.clone(),
                material: "button".into(),
                quantity: 200.0,
                lot: "B-1".into(),
                at: None,
            },
            &Cause::root("o-chase"),
        ))
        .await?;
    let received: GoodsReceived = next(&mut events).await?;
    assert_eq!(received.purchase_order_id, button);

    // Day 8: the fabric missed day 7. The next chase is that one: the
    // unconfirmed ones were not repeated.
    procurement.advance_days(5);
    let late: PurchaseOrderLate = next(&mut events).await?;
    assert_eq!(late.purchase_order_id, fabric);
    assert_eq!(late.lateness, "not_received");
    assert_eq!(late.due_date, procurement.day(7));
    assert_eq!(late.days_late, 1);
    assert_eq!(procurement.chase_pass().await?, 0);
    assert_eq!(procurement.chases(&fabric, "not_received").await?, 1);
    assert_eq!(procurement.chases(&fabric, "unconfirmed").await?, 1);
    assert_eq!(procurement.chases(&button, "not_received").await?, 0);
    procurement.stop().await
}

#[tokio::test]
async fn resource_materials_moves_a_late_order_to_the_next_supplier() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    let mut events = procurement.events().await?;
    let placed = procurement.procure(&mut events, "o-late", 100).await?;
    let fabric = placed["fabric"].purchase_order_id.clone();
    let button = placed["button"].purchase_order_id.clone();

    procurement.advance_days(8);
    late_for(&mut events, &fabric, "not_received").await?;
    let resource = ResourceMaterials {
        order_id: "o-late".into(),
        purchase_order_id: fabric.clone(),
        reason: "FAST missed its date".into(),
    };
    procurement.command("o-late", &resource).await?;

    // SLOW is the next offer: 20 days from day 8.
    let new_po: PurchaseOrderPlaced = next(&mut events).await?;
    assert_eq!(new_po.order_id, "o-late");
    assert_eq!(
        (new_po.supplier.as_str(), new_po.material.as_str()),
        ("SLOW", "fabric")
    );
    assert_eq!(new_po.quantity, 100.0);
    assert_eq!(new_po.expected_date, procurement.day(28));
    let resourced: MaterialsResourced = next(&mut events).await?;
    assert_eq!(resourced.order_id, "o-late");
    assert_eq!(resourced.cancelled_purchase_order_id, fabric);
    assert_eq!(resourced.new_purchase_order_id, new_po.purchase_order_id);
    assert_eq!(resourced.supplier, "SLOW");
    assert_eq!(resourced.expected_date, procurement.day(28));
    assert!(resourced.problem.is_empty(), "{resourced:?}");
    let delayed: MaterialsDelayed = next(&mut events).await?;
    assert_eq!(delayed.order_id, "o-late");
    assert_eq!(delayed.purchase_order_id, new_po.purchase_order_id);
    assert_eq!(delayed.expected_ready_date, procurement.day(28));

    assert_eq!(procurement.po_status(&fabric).await?, "cancelled");
    let replacement = procurement
        .client
        .get_purchase_order(GetPurchaseOrderRequest {
            purchase_order_id: new_po.purchase_order_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(replacement.status, "open");
    assert_eq!(replacement.replaces, fabric);
    // What the order counted on moved with it.
    assert_eq!(replacement.allocated, 100.0);
    let stock = procurement
        .client
        .get_stock(GetStockRequest {
            material: "fabric".into(),
        })
        .await?
        .into_inner();
    assert_eq!(stock.on_order, 100.0);

    // The same command again answers the same fact, and buys nothing.
    procurement.repeat("o-late", &resource).await?;
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM purchase_orders")
            .await?,
        3
    );

    // Nobody but FAST offers buttons: an answer with the problem, nothing
    // changed.
    procurement
        .command(
            "o-late",
            &ResourceMaterials {
                order_id: "o-late".into(),
                purchase_order_id: button.clone(),
                reason: String::new(),
            },
        )
        .await?;
    let refused: MaterialsResourced = next(&mut events).await?;
    assert!(
        refused.problem.contains("no supplier other than FAST"),
        "{refused:?}"
    );
    assert!(refused.new_purchase_order_id.is_empty());
    assert_eq!(procurement.po_status(&button).await?, "open");
    assert_eq!(
        procurement
            .count("SELECT count(*) FROM purchase_orders")
            .await?,
        3
    );
    procurement.stop().await
}

#[tokio::test]
async fn accepting_a_supplier_delay_moves_the_date_and_chases_it_again() -> anyhow::Result<()> {
    let mut procurement = Procurement::start().await?;
    let mut events = procurement.events().await?;
    let placed = procurement.procure(&mut events, "o-delay", 100).await?;
    let fabric = placed["fabric"].purchase_order_id.clone();
    procurement
        .client
        .confirm_purchase_order(ConfirmPurchaseOrderRequest {
            purchase_order_id: fabric.clone(),
            confirmed_eta: procurement.day(7),
        })
        .await?;

    procurement.advance_days(8);
    late_for(&mut events, &fabric, "not_received").await?;
    let accept = AcceptSupplierDelay {
        order_id: "o-delay".into(),
        purchase_order_id: fabric.clone(),
        new_expected_date: procurement.day(12),
    };
    procurement.command("o-delay", &accept).await?;
    let accepted: SupplierDelayAccepted = next(&mut events).await?;
    assert_eq!(accepted.order_id, "o-delay");
    assert_eq!(accepted.purchase_order_id, fabric);
    assert_eq!(accepted.new_expected_date, procurement.day(12));
    let delayed: MaterialsDelayed = next(&mut events).await?;
    assert_eq!(delayed.order_id, "o-delay");
    assert_eq!(delayed.purchase_order_id, fabric);
    assert_eq!(delayed.expected_ready_date, procurement.day(12));
    let po = procurement
        .client
        .get_purchase_order(GetPurchaseOrderRequest {
            purchase_order_id: fabric.clone(),
        })
        .await?
        .into_inner();
    let day12 = procurement.day(12);
    assert_eq!((&po.expected_date, &po.confirmed_eta), (&day12, &day12));

    // The same command again is answered again, as the same fact.
    procurement.repeat("o-delay", &accept).await?;

    // The new date is chased once it is missed.
    procurement.advance_days(5);
    let late = late_for(&mut events, &fabric, "not_received").await?;
    assert_eq!(late.due_date, procurement.day(12));
    assert_eq!(late.days_late, 1);
    assert_eq!(procurement.chases(&fabric, "not_received").await?, 2);

    // Invalid commands are dead-lettered naming the field.
    let mut dead = procurement.dead_letters().await?;
    procurement
        .command(
            "o-delay",
            &AcceptSupplierDelay {
                new_expected_date: procurement.day(10),
                ..accept.clone()
            },
        )
        .await?;
    let reason = dead_letter_reason(&mut dead).await?;
    assert!(reason.contains("new_expected_date"), "{reason}");
    assert!(reason.contains("in the past"), "{reason}");
    procurement
        .command(
            "o-other",
            &AcceptSupplierDelay {
                order_id: "o-other".into(),
                new_expected_date: procurement.day(20),
                ..accept.clone()
            },
        )
        .await?;
    let reason = dead_letter_reason(&mut dead).await?;
    assert!(reason.contains("purchase_order_id"), "{reason}");
    assert!(reason.contains("does not supply order o-other"), "{reason}");
    procurement
        .command(
            "o-delay",
            &ResourceMaterials {
                order_id: "o-delay".into(),
                purchase_order_id: uuid::Uuid::now_v7().to_string(),
                reason: String::new(),
            },
        )
        .await?;
    let reason = dead_letter_reason(&mut dead).await?;
    assert!(reason.contains("purchase_order_id"), "{reason}");
    assert!(reason.contains("unknown purchase order"), "{reason}");
    // The rejected delay moved nothing.
    let po = procurement
        .client
        .get_purchase_order(GetPurchaseOrderRequest {
            purchase_order_id: fabric.clone(),
        })
        .await?
        .into_inner();
    assert_eq!((&po.expected_date, &po.confirmed_eta), (&day12, &day12));
    procurement.stop().await
}
