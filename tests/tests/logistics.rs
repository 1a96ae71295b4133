//! The logistics service against real NATS and PostgreSQL: packing lists
//! from a customer's spec and the check of what the WMS packed, export
//! documents cross-checked, carrier booking, shipment, tracking and
//! delivery, and gRPC validation.

use std::sync::Arc;
use std::time::Duration;

use gendan_logistics::{
    Application, CARRIER_DELIVERED_SUBJECT, CARRIER_TRACKING_SUBJECT, ManualClock, Options,
    WMS_PACKED_SUBJECT, WMS_SHIPPED_SUBJECT,
};
use gendan_messaging::{Bus, Cause, Outgoing, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::logistics_service_client::LogisticsServiceClient;
use gendan_proto::v1::{
    BookShipment, CancelShipment, CarrierDelivered, CarrierLane, CarrierTracking, Delivered,
    DocumentsReady, DocumentsRejected, GetDocumentsRequest, GetPackingListRequest,
    GetPackingSpecRequest, GetProductMasterRequest, GetShipmentRequest, Order, OrderLine,
    PackingChecked, PackingList, PackingListFailed, PackingListReady, PackingSpec,
    PrepareDocuments, PreparePacking, ProductMaster, ProductPackingRule, RestateFact,
    ShipmentBooked, ShipmentCancelled, Shipped, StatusReported, TrackingUpdated, WmsCarton,
    WmsPacked, WmsShipped,
};
use gendan_tests::{Seen, SubjectReader, TestDb, TestNats, service_settings};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);
const CUSTOMER: &str = "Nordwind GmbH";
/// A valid EAN-13 (check digit 1).
const EAN: &str = "4006381333931";

struct Logistics {
    nats: TestNats,
    _db: TestDb,
    bus: Bus,
    pool: PgPool,
    client: LogisticsServiceClient<Channel>,
    events: SubjectReader,
    cancel: CancellationToken,
    task: JoinHandle<gendan_logistics::Result<()>>,
}

impl Logistics {
    async fn start() -> anyhow::Result<Self> {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await?;
        let db = TestDb::create().await?;
        // The day the orders here are ready: the bookings' ETDs are ahead,
        // so the chasing worker (tests/tests/shipping_exceptions.rs) stays
        // quiet whatever the real date is.
        let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 2)
            .and_then(|day| day.and_hms_opt(9, 0, 0))
            .map(|at| at.and_utc())
            .ok_or_else(|| anyhow::anyhow!("bad test date"))?;
        let options = Options {
            clock: Arc::new(ManualClock::new(today)),
            ..Options::default()
        };
        let app =
            Application::build_with(service_settings(&db, &nats, "logistics"), options).await?;
        let port = app.port();
        let pool = app.pool().clone();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        let client = LogisticsServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
        let bus = Bus::connect(&nats.url, "test").await?;
        let events =
            SubjectReader::open(&nats.url, streams::EVENTS, "gendan.evt.logistics.>").await?;
        Ok(Logistics {
            nats,
            _db: db,
            bus,
            pool,
            client,
            events,
            cancel,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.task.await??;
        Ok(())
    }

    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let message = Outgoing::command(
            "test",
            "logistics",
            order_id,
            payload,
            &Cause::root(order_id),
        );
        self.bus.publish(&message).await?;
        Ok(())
    }

    /// Sends a command again on purpose and waits until logistics has handled
    /// it: its answer is the same fact under the same event id, so nothing
    /// new reaches the bus.
    async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        gendan_tests::repeat_command(&self.bus, &self.pool, "logistics", order_id, payload).await
    }

    /// The next event of type `M` about `order_id`, with its event id.
    async fn event_with_id<M: prost::Message + TypeName + Default>(
        &mut self,
        order_id: &str,
    ) -> anyhow::Result<(M, String)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let seen = self.events.next_of_type(M::TYPE_NAME, left).await?;
            let envelope = seen.envelope()?;
            if envelope.order_id == order_id {
                return Ok((seen.decode()?, envelope.event_id));
            }
        }
    }

    async fn external<M: prost::Message + TypeName>(
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

    /// The next event of type `M` about `order_id`.
    async fn event<M: prost::Message + TypeName + Default>(
        &mut self,
        order_id: &str,
    ) -> anyhow::Result<M> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let seen: Seen = self.events.next_of_type(M::TYPE_NAME, left).await?;
            if seen.envelope()?.order_id == order_id {
                return seen.decode();
            }
        }
    }

    /// The next event about `order_id`, whatever its type.
    async fn next_event(&mut self, order_id: &str) -> anyhow::Result<Seen> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let seen = self
                .events
                .next(left)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no event about {order_id} within {WAIT:?}"))?;
            if seen.envelope()?.order_id == order_id {
                return Ok(seen);
            }
        }
    }

    async fn dead_letter(&self, consumer: &str) -> anyhow::Result<String> {
        let mut reader = SubjectReader::open(
            &self.nats.url,
            streams::DEAD_LETTERS,
            &format!("gendan.dlq.{consumer}"),
        )
        .await?;
        let seen = reader
            .next(WAIT)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no dead letter on {consumer}"))?;
        Ok(seen.header("Gendan-Dlq-Reason").unwrap_or_default())
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or(-1)
    }

    /// Nordwind packs 24 per carton, jackets 10, at most 20 kg; shirts and
    /// jackets have product data, caps have none.
    async fn seed(&mut self) -> anyhow::Result<()> {
        self.client
            .upsert_packing_spec(PackingSpec {
                customer: CUSTOMER.into(),
                default_units_per_carton: 24,
                product_rules: vec![ProductPackingRule {
                    product: "jacket".into(),
                    units_per_carton: 10,
                }],
                marks_template: "{customer} / ORDER {order} / C/NO {carton} OF {total}".into(),
                barcode_type: "EAN-13".into(),
                max_gross_weight_kg: 20.0,
                carton_tare_kg: 0.8,
            })
            .await?;
        for (product, description, hs, weight) in [
            ("shirt", "Men's woven cotton shirt", "6205.20", 0.25),
            ("jacket", "Men's padded jacket", "620193", 1.2),
        ] {
            self.client
                .upsert_product_master(ProductMaster {
                    product: product.into(),
                    description: description.into(),
                    hs_code: hs.into(),
                    unit_net_weight_kg: weight,
                    country_of_origin: "CN".into(),
                })
                .await?;
        }
        for (code, mode, weekday, transit, basis, rate) in [
            ("SEA-FRI", "sea", 5, 30, "per_carton", 400),
            ("AIR-TUE", "air", 2, 3, "per_kg", 450),
            ("ROAD-MON", "road", 1, 12, "per_carton", 900),
        ] {
            self.client
                .upsert_carrier_lane(CarrierLane {
                    code: code.into(),
                    carrier: format!("{code} carrier"),
                    mode: mode.into(),
                    departure_weekday: weekday,
                    transit_days: transit,
                    cutoff_days: 2,
                    cost_basis: basis.into(),
                    rate_minor: rate,
                    currency: "USD".into(),
                })
                .await?;
        }
        Ok(())
    }

    async fn packing_list(&mut self, order_id: &str) -> anyhow::Result<PackingList> {
        Ok(self
            .client
            .get_packing_list(GetPackingListRequest {
                order_id: order_id.into(),
            })
            .await?
            .into_inner())
    }
}

fn order(lines: &[(&str, u32, i64)], export: bool) -> Order {
    Order {
        order_id: uuid::Uuid::now_v7().to_string(),
        customer: CUSTOMER.into(),
        lines: lines
            .iter()
            .map(|(product, quantity, price)| OrderLine {
                product: (*product).into(),
                spec: String::new(),
                quantity: *quantity,
                unit_price_minor: *price,
            })
            .collect(),
        currency: "USD".into(),
        requested_delivery_date: "2026-03-25".into(),
        incoterm: "FOB".into(),
        payment_terms: "30% T/T deposit, 70% against B/L copy".into(),
        export,
        total_minor: lines.iter().map(|(_, q, p)| i64::from(*q) * p).sum(),
        ..Order::default()
    }
}

/// What a careful warehouse reports for `list`.
fn packed_as_listed(list: &PackingList) -> Vec<WmsCarton> {
    list.cartons
        .iter()
        .map(|carton| WmsCarton {
            carton_number: carton.carton_number,
            product: carton.product.clone(),
            quantity: carton.quantity,
            marks: carton.marks.clone(),
            label_barcode: EAN.into(),
            gross_weight_kg: carton.gross_weight_kg,
        })
        .collect()
}

async fn prepared(logistics: &mut Logistics, order: &Order) -> anyhow::Result<PackingListReady> {
    logistics
        .command(
            &order.order_id,
            &PreparePacking {
                revision: 0,
                order: Some(order.clone()),
            },
        )
        .await?;
    logistics.event::<PackingListReady>(&order.order_id).await
}

#[tokio::test]
async fn packing_list_from_the_spec_and_the_wms_check() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    logistics.seed().await?;
    let order = order(&[("shirt", 50, 1250), ("jacket", 20, 4500)], true);
    let id = order.order_id.clone();

    // Shirts 24 + 24 + 2, jackets 10 + 10.
    assert_eq!(prepared(&mut logistics, &order).await?.cartons, 5);
    let list = logistics.packing_list(&id).await?;
    assert_eq!(list.status, "prepared");
    assert_eq!(
        list.cartons
            .iter()
            .map(|c| (c.product.as_str(), c.quantity))
            .collect::<Vec<_>>(),
        [
            ("shirt", 24),
            ("shirt", 24),
            ("shirt", 2),
            ("jacket", 10),
            ("jacket", 10)
        ]
    );
    assert_eq!(
        list.cartons[2].marks,
        format!("{CUSTOMER} / ORDER {id} / C/NO 3 OF 5")
    );
    assert_eq!(list.cartons[0].gross_weight_kg, 6.8);
    assert_eq!(list.cartons[4].gross_weight_kg, 12.8);

    // A repeated command answers with the same fact (the same event id, so
    // nobody counts it twice) and builds nothing twice.
    logistics
        .repeat(
            &id,
            &PreparePacking {
                revision: 0,
                order: Some(order.clone()),
            },
        )
        .await?;
    assert_eq!(
        logistics
            .count("SELECT count(*) FROM packing_list_cartons")
            .await,
        5
    );

    let packed = WmsPacked {
        order_id: id.clone(),
        cartons: packed_as_listed(&list),
        at: None,
    };
    logistics.external(WMS_PACKED_SUBJECT, &id, &packed).await?;
    let checked = logistics.event::<PackingChecked>(&id).await?;
    assert!(checked.matches, "{:?}", checked.mismatches);
    assert_eq!(logistics.packing_list(&id).await?.status, "checked");

    // Carton 2 short by four shirts and carton 5 without its label.
    let mut short = packed.clone();
    short.cartons[1].quantity = 20;
    short.cartons[4].label_barcode = String::new();
    logistics.external(WMS_PACKED_SUBJECT, &id, &short).await?;
    let checked = logistics.event::<PackingChecked>(&id).await?;
    assert!(!checked.matches);
    assert_eq!(
        checked.mismatches,
        [
            "product shirt: packed 46 units, packing list 50",
            "carton 2: 20 units, packing list 24",
            "carton 5: no label barcode",
        ]
    );
    let list = logistics.packing_list(&id).await?;
    assert_eq!(list.status, "mismatch");
    assert_eq!(list.checks.len(), 2);
    assert_eq!(list.checks[1].mismatches, checked.mismatches);

    logistics.stop().await
}

#[tokio::test]
async fn packing_without_a_spec_fails_and_stray_wms_reports_are_dead_lettered() -> anyhow::Result<()>
{
    let mut logistics = Logistics::start().await?;
    let mut stranger = order(&[("shirt", 10, 100)], false);
    stranger.customer = "Unknown Customer Ltd".into();
    let id = stranger.order_id.clone();
    logistics
        .command(
            &id,
            &PreparePacking {
                revision: 0,
                order: Some(stranger),
            },
        )
        .await?;
    let failed = logistics.event::<PackingListFailed>(&id).await?;
    assert!(
        failed.reason.contains("Unknown Customer Ltd"),
        "{}",
        failed.reason
    );
    assert_eq!(
        logistics.count("SELECT count(*) FROM packing_lists").await,
        0
    );

    logistics
        .external(
            WMS_PACKED_SUBJECT,
            &id,
            &WmsPacked {
                order_id: id.clone(),
                cartons: vec![],
                at: None,
            },
        )
        .await?;
    let reason = logistics.dead_letter("logistics-wms").await?;
    assert!(reason.contains("no packing list"), "{reason}");

    logistics.stop().await
}

#[tokio::test]
async fn export_documents_are_cross_checked() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    logistics.seed().await?;

    let good = order(&[("shirt", 48, 1250), ("jacket", 10, 4500)], true);
    let id = good.order_id.clone();
    prepared(&mut logistics, &good).await?;
    logistics
        .command(
            &id,
            &PrepareDocuments {
                revision: 0,
                order: Some(good.clone()),
                inspection_id: "fi-2026-0042".into(),
            },
        )
        .await?;
    let ready = logistics.event::<DocumentsReady>(&id).await?;
    assert_eq!(
        ready.documents,
        [
            "commercial_invoice",
            "packing_list",
            "customs_declaration",
            "certificate_of_origin",
            "inspection_certificate"
        ]
    );
    let set = logistics
        .client
        .get_documents(GetDocumentsRequest {
            order_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(set.status, "ready");
    assert!(set.documents.iter().all(|d| d.status == "ok"));
    let customs = &set.documents[2].content_json;
    for expected in [
        r#""hs_code":"620520""#,
        r#""net_weight_kg":12.0"#,
        r#""total_value_minor":105000"#,
        r#""consignee":"Nordwind GmbH""#,
    ] {
        assert!(customs.contains(expected), "{expected} not in {customs}");
    }
    let inspection = &set.documents[4].content_json;
    assert!(
        inspection.contains(r#""inspection_id":"fi-2026-0042""#),
        "{inspection}"
    );

    // Caps have no product data: no HS code, no weight.
    let capped = order(&[("shirt", 24, 1250), ("cap", 12, 300)], true);
    let capped_id = capped.order_id.clone();
    prepared(&mut logistics, &capped).await?;
    let command = PrepareDocuments {
        revision: 0,
        order: Some(capped.clone()),
        inspection_id: String::new(),
    };
    logistics.command(&capped_id, &command).await?;
    let rejected = logistics.event::<DocumentsRejected>(&capped_id).await?;
    assert!(
        rejected
            .problems
            .contains(&"product cap has no HS code".to_owned()),
        "{:?}",
        rejected.problems
    );
    let set = logistics
        .client
        .get_documents(GetDocumentsRequest {
            order_id: capped_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(set.status, "rejected");
    let customs = set
        .documents
        .iter()
        .find(|d| d.name == "customs_declaration")
        .unwrap();
    assert_eq!(customs.status, "problems");
    assert!(
        customs
            .problems
            .contains(&"product cap has no HS code".to_owned())
    );

    // Once the cap's data is entered, the re-sent command succeeds: the
    // packing list's cartons get their weights.
    logistics
        .client
        .upsert_product_master(ProductMaster {
            product: "cap".into(),
            description: "Cotton baseball cap".into(),
            hs_code: "650500".into(),
            unit_net_weight_kg: 0.1,
            country_of_origin: "CN".into(),
        })
        .await?;
    logistics.command(&capped_id, &command).await?;
    let ready = logistics.event::<DocumentsReady>(&capped_id).await?;
    assert_eq!(ready.documents.len(), 5);

    // Domestic: invoice and packing list only.
    let domestic = order(&[("shirt", 24, 1250)], false);
    prepared(&mut logistics, &domestic).await?;
    logistics
        .command(
            &domestic.order_id,
            &PrepareDocuments {
                revision: 0,
                order: Some(domestic.clone()),
                inspection_id: String::new(),
            },
        )
        .await?;
    let ready = logistics
        .event::<DocumentsReady>(&domestic.order_id)
        .await?;
    assert_eq!(ready.documents, ["commercial_invoice", "packing_list"]);

    logistics.stop().await
}

#[tokio::test]
async fn booking_shipping_tracking_and_delivery() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    logistics.seed().await?;
    let order = order(&[("shirt", 240, 1250)], true);
    let id = order.order_id.clone();
    assert_eq!(prepared(&mut logistics, &order).await?.cartons, 10);

    // Ready Monday 2026-03-02, due 2026-03-25. Sea (Fri +30) arrives
    // 2026-04-05, too late; road (Mon 03-09 +12 = 03-21) at 10 x 9.00 beats
    // air (Tue 03-10 +3) at 68 kg x 4.50.
    let book = BookShipment {
        redelivery: false,
        order: Some(order.clone()),
        ready_date: "2026-03-02".into(),
        deliver_by: String::new(),
        revision: 1,
    };
    logistics.command(&id, &book).await?;
    let booked = logistics.event::<ShipmentBooked>(&id).await?;
    assert_eq!(
        (
            booked.lane_code.as_str(),
            booked.mode.as_str(),
            booked.etd.as_str(),
            booked.eta.as_str()
        ),
        ("ROAD-MON", "road", "2026-03-09", "2026-03-21")
    );
    assert_eq!(booked.freight_cost_minor, 9000);
    assert_eq!(booked.currency, "USD");
    assert!(booked.meets_requested_date);

    // Idempotent: the same booking again, as the same fact.
    logistics.repeat(&id, &book).await?;
    assert_eq!(logistics.count("SELECT count(*) FROM shipments").await, 1);

    logistics
        .external(
            WMS_SHIPPED_SUBJECT,
            &id,
            &WmsShipped {
                order_id: id.clone(),
                bill_of_lading: "RD-889120".into(),
                at: None,
            },
        )
        .await?;
    let shipped = logistics.event::<Shipped>(&id).await?;
    assert_eq!(shipped.bill_of_lading, "RD-889120");

    logistics
        .external(
            CARRIER_TRACKING_SUBJECT,
            &id,
            &CarrierTracking {
                order_id: id.clone(),
                booking_reference: booked.booking_reference.clone(),
                status: "in transit".into(),
                location: "Hamburg".into(),
                at: None,
                eta: " 2031-02-03 ".into(),
            },
        )
        .await?;
    let tracked = logistics.event::<TrackingUpdated>(&id).await?;
    assert_eq!(tracked.eta, "2031-02-03");
    assert_eq!(
        (tracked.status.as_str(), tracked.location.as_str()),
        ("in transit", "Hamburg")
    );

    logistics
        .external(
            CARRIER_DELIVERED_SUBJECT,
            &id,
            &CarrierDelivered {
                order_id: id.clone(),
                booking_reference: booked.booking_reference.clone(),
                proof_of_delivery: "POD signed by K. Vogel".into(),
                at: None,
            },
        )
        .await?;
    let delivered = logistics.event::<Delivered>(&id).await?;
    assert_eq!(delivered.proof_of_delivery, "POD signed by K. Vogel");

    let shipment = logistics
        .client
        .get_shipment(GetShipmentRequest {
            order_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(shipment.status, "delivered");
    assert_eq!(shipment.bill_of_lading, "RD-889120");
    assert_eq!(shipment.tracking.len(), 1);
    assert_eq!(shipment.proof_of_delivery, "POD signed by K. Vogel");

    // Too late to cancel.
    logistics
        .command(
            &id,
            &CancelShipment {
                order_id: id.clone(),
                reason: "customer cancelled".into(),
            },
        )
        .await?;
    let reason = logistics.dead_letter("logistics-commands").await?;
    assert!(reason.contains("cannot be cancelled"), "{reason}");

    logistics.stop().await
}

#[tokio::test]
async fn a_cancelled_booking_cannot_ship() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    logistics.seed().await?;
    let order = order(&[("shirt", 24, 1250)], true);
    let id = order.order_id.clone();
    prepared(&mut logistics, &order).await?;
    logistics
        .command(
            &id,
            &BookShipment {
                redelivery: false,
                order: Some(order.clone()),
                ready_date: "2026-03-02".into(),
                // Generous: the cheapest lane, sea, is in time.
                deliver_by: "2026-06-30".into(),
                revision: 1,
            },
        )
        .await?;
    let booked = logistics.event::<ShipmentBooked>(&id).await?;
    assert_eq!(booked.lane_code, "SEA-FRI");
    assert_eq!(booked.freight_cost_minor, 400);

    let cancel = CancelShipment {
        order_id: id.clone(),
        reason: "order cancelled".into(),
    };
    logistics.command(&id, &cancel).await?;
    let (_, event_id) = logistics.event_with_id::<ShipmentCancelled>(&id).await?;
    // The cancellation is one fact: said again, it keeps its event id.
    let fact =
        gendan_messaging::fact_id("logistics", ShipmentCancelled::TYPE_NAME, &id, "cancelled");
    assert_eq!(event_id, fact.to_string());
    logistics.repeat(&id, &cancel).await?;
    let shipment = logistics
        .client
        .get_shipment(GetShipmentRequest {
            order_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(shipment.status, "cancelled");
    assert_eq!(shipment.cancel_reason, "order cancelled");

    logistics
        .external(
            WMS_SHIPPED_SUBJECT,
            &id,
            &WmsShipped {
                order_id: id.clone(),
                bill_of_lading: "BL-1".into(),
                at: None,
            },
        )
        .await?;
    let reason = logistics.dead_letter("logistics-wms").await?;
    assert!(reason.contains("cancelled"), "{reason}");

    logistics.stop().await
}

/// Books `order` on revision 1 the way the saga does; the booking.
async fn booked(logistics: &mut Logistics, order: &Order) -> anyhow::Result<ShipmentBooked> {
    let book = BookShipment {
        redelivery: false,
        order: Some(order.clone()),
        ready_date: "2026-03-02".into(),
        deliver_by: String::new(),
        revision: 1,
    };
    logistics.command(&order.order_id, &book).await?;
    logistics.event::<ShipmentBooked>(&order.order_id).await
}

fn restate<M: TypeName>(order_id: &str, step: &str, revision: u32) -> RestateFact {
    RestateFact {
        order_id: order_id.into(),
        step: step.into(),
        awaited: M::TYPE_NAME.into(),
        revision,
    }
}

#[tokio::test]
async fn an_overdue_wait_gets_the_fact_again_or_where_things_stand() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    logistics.seed().await?;

    let shipping = order(&[("shirt", 240, 1250)], true);
    let id = shipping.order_id.clone();
    prepared(&mut logistics, &shipping).await?;
    let booking = booked(&mut logistics, &shipping).await?;
    logistics
        .external(
            WMS_SHIPPED_SUBJECT,
            &id,
            &WmsShipped {
                order_id: id.clone(),
                bill_of_lading: "RD-889120".into(),
                at: None,
            },
        )
        .await?;
    let (shipped, shipped_id) = logistics.event_with_id::<Shipped>(&id).await?;
    assert_eq!(shipped.revision, booking.revision);

    // Held: Shipped is announced again as the fact of its booking revision
    // and bill of lading, the key the first announcement had, so its event
    // id is the original's and JetStream drops the repeat.
    let key = gendan_logistics::revision::shipped_key(booking.revision, &shipped.bill_of_lading);
    let fact = gendan_messaging::fact_id("logistics", Shipped::TYPE_NAME, &id, &key);
    assert_eq!(shipped_id, fact.to_string());
    logistics
        .repeat(&id, &restate::<Shipped>(&id, "shipped", booking.revision))
        .await?;

    // Not held yet: where things stand. It is the next event about the
    // order, so restating Shipped above published nothing new (no status,
    // no Shipped under another id).
    logistics
        .command(
            &id,
            &restate::<Delivered>(&id, "delivered", booking.revision),
        )
        .await?;
    let next = logistics.next_event(&id).await?;
    assert_eq!(next.type_name(), StatusReported::TYPE_NAME);
    let status: StatusReported = next.decode()?;
    assert_eq!(
        (status.step.as_str(), status.awaited.as_str()),
        ("delivered", Delivered::TYPE_NAME)
    );
    assert!(status.status.contains("RD-889120"), "{}", status.status);

    // Booked, not shipped: the status names the booking.
    let waiting = order(&[("shirt", 24, 1250)], true);
    let waiting_id = waiting.order_id.clone();
    prepared(&mut logistics, &waiting).await?;
    let booking = booked(&mut logistics, &waiting).await?;
    logistics
        .command(
            &waiting_id,
            &restate::<Shipped>(&waiting_id, "shipped", booking.revision),
        )
        .await?;
    let status = logistics.event::<StatusReported>(&waiting_id).await?;
    assert_eq!(status.awaited, Shipped::TYPE_NAME);
    assert!(
        status.status.contains(&booking.booking_reference),
        "{}",
        status.status
    );
    assert!(
        status.status.contains("not reported it shipped"),
        "{}",
        status.status
    );

    // A fact logistics does not announce can never be restated.
    let mut invoiced = restate::<Shipped>(&waiting_id, "invoiced", 0);
    invoiced.awaited = "gendan.v1.Invoiced".into();
    logistics.command(&waiting_id, &invoiced).await?;
    let reason = logistics.dead_letter("logistics-commands").await?;
    assert!(reason.contains("awaited"), "{reason}");

    logistics.stop().await
}

#[tokio::test]
async fn invalid_requests_name_the_field_and_store_nothing() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;

    let status = logistics
        .client
        .upsert_product_master(ProductMaster {
            product: "shirt".into(),
            description: "Shirt".into(),
            hs_code: "6205".into(),
            unit_net_weight_kg: 0.25,
            country_of_origin: "CN".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("hs_code"), "{}", status.message());
    let missing = logistics
        .client
        .get_product_master(GetProductMasterRequest {
            product: "shirt".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let status = logistics
        .client
        .upsert_product_master(ProductMaster {
            product: "shirt".into(),
            description: "Shirt".into(),
            hs_code: "620520".into(),
            unit_net_weight_kg: -1.0,
            country_of_origin: "CN".into(),
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("unit_net_weight_kg"),
        "{}",
        status.message()
    );

    let status = logistics
        .client
        .upsert_packing_spec(PackingSpec {
            customer: CUSTOMER.into(),
            default_units_per_carton: 24,
            product_rules: vec![ProductPackingRule {
                product: "jacket".into(),
                units_per_carton: 0,
            }],
            marks_template: "{customer}".into(),
            barcode_type: "EAN-13".into(),
            max_gross_weight_kg: 20.0,
            carton_tare_kg: 0.5,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("product_rules[0].units_per_carton"),
        "{}",
        status.message()
    );
    let status = logistics
        .client
        .upsert_packing_spec(PackingSpec {
            customer: CUSTOMER.into(),
            default_units_per_carton: 24,
            product_rules: vec![],
            marks_template: "{customer} {po_number}".into(),
            barcode_type: "EAN-13".into(),
            max_gross_weight_kg: 20.0,
            carton_tare_kg: 0.5,
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("marks_template"),
        "{}",
        status.message()
    );
    let missing = logistics
        .client
        .get_packing_spec(GetPackingSpecRequest {
            customer: CUSTOMER.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let status = logistics
        .client
        .upsert_carrier_lane(CarrierLane {
            code: "SEA".into(),
            carrier: "Line".into(),
            mode: "sea".into(),
            departure_weekday: 9,
            transit_days: 30,
            cutoff_days: 2,
            cost_basis: "per_carton".into(),
            rate_minor: 100,
            currency: "USD".into(),
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("departure_weekday"),
        "{}",
        status.message()
    );
    assert_eq!(
        logistics.count("SELECT count(*) FROM carrier_lanes").await,
        0
    );

    let status = logistics
        .client
        .get_packing_list(GetPackingListRequest {
            order_id: "order-42".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("order_id"),
        "{}",
        status.message()
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    for code in [
        logistics
            .client
            .get_packing_list(GetPackingListRequest {
                order_id: unknown.clone(),
            })
            .await
            .unwrap_err()
            .code(),
        logistics
            .client
            .get_documents(GetDocumentsRequest {
                order_id: unknown.clone(),
            })
            .await
            .unwrap_err()
            .code(),
        logistics
            .client
            .get_shipment(GetShipmentRequest { order_id: unknown })
            .await
            .unwrap_err()
            .code(),
    ] {
        assert_eq!(code, tonic::Code::NotFound);
    }

    logistics.stop().await
}
