//! A redelivery in the logistics service against real NATS and PostgreSQL:
//! after the order was delivered, a customer's claim resolved by a
//! replacement has the claimed goods packed and booked again
//! (`BookShipment` with `redelivery`) as a new shipment of the same order.
//! The test plays the saga, the WMS and the carrier: the replacement gets
//! its own booking, `Shipped` and `Delivered` (facts of its booking
//! revision, with new event ids), the first shipment stays on record, and
//! reports about the first shipment never complete the replacement.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_logistics::{
    Application, CARRIER_CARGO_EXCEPTION_SUBJECT, CARRIER_DELIVERED_SUBJECT,
    CARRIER_TRACKING_SUBJECT, ManualClock, Options, WMS_SHIPPED_SUBJECT,
};
use gendan_messaging::{Cause, Outgoing, fact_id, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::logistics_service_client::LogisticsServiceClient;
use gendan_proto::v1::{
    BookShipment, CargoClaimOpened, CarrierCargoException, CarrierDelivered, CarrierLane,
    CarrierTracking, Delivered, GetShipmentRequest, Order, OrderLine, PackingListReady,
    PackingSpec, PreparePacking, ProductMaster, Shipment, ShipmentBooked, Shipped, TrackingUpdated,
    WmsShipped,
};
use gendan_tests::{Running, SubjectReader};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(30);
const CUSTOMER: &str = "Nordwind GmbH";

/// 09:00 UTC on `date`.
fn at(date: &str) -> DateTime<Utc> {
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .expect("a test date")
        .and_hms_opt(9, 0, 0)
        .expect("a time of day")
        .and_utc()
}

struct Logistics {
    svc: Running,
    clock: ManualClock,
    client: LogisticsServiceClient<Channel>,
    events: SubjectReader,
}

impl Logistics {
    /// The service on a clock standing at Monday 2026-03-02, the day the
    /// first shipment is ready, with the data of [`Self::seed`].
    async fn start() -> anyhow::Result<Self> {
        let clock = ManualClock::new(at("2026-03-02"));
        let options = Options {
            clock: Arc::new(clock.clone()),
            chase_poll: Duration::from_millis(50),
        };
        let svc = Running::start("logistics", |settings| {
            Application::build_with(settings, options)
        })
        .await?;
        let client = LogisticsServiceClient::connect(svc.endpoint()).await?;
        let events =
            SubjectReader::open(&svc.nats.url, streams::EVENTS, "gendan.evt.logistics.>").await?;
        let mut logistics = Logistics {
            svc,
            clock,
            client,
            events,
        };
        logistics.seed().await?;
        Ok(logistics)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.svc.stop().await
    }

    /// Nordwind packs 24 shirts per carton (0.25 kg each, 0.8 kg carton);
    /// sea leaves Fridays (30 days), air Tuesdays (3 days, per kg), road
    /// Mondays (12 days), each with two days' cut-off.
    async fn seed(&mut self) -> anyhow::Result<()> {
        self.client
            .upsert_packing_spec(PackingSpec {
                customer: CUSTOMER.into(),
                default_units_per_carton: 24,
                product_rules: vec![],
                marks_template: "{customer} / ORDER {order} / C/NO {carton} OF {total}".into(),
                barcode_type: "EAN-13".into(),
                max_gross_weight_kg: 20.0,
                carton_tare_kg: 0.8,
            })
            .await?;
        self.client
            .upsert_product_master(ProductMaster {
                product: "shirt".into(),
                description: "Men's woven cotton shirt".into(),
                hs_code: "620520".into(),
                unit_net_weight_kg: 0.25,
                country_of_origin: "CN".into(),
            })
            .await?;
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

    /// Sends a saga command once.
    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.command(order_id, payload).await.map(drop)
    }

    /// Sends a command again on purpose and waits until logistics has
    /// handled it: its answer is the same fact under the same event id, so
    /// nothing new reaches the bus.
    async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.repeat(order_id, payload).await
    }

    /// Publishes a WMS or carrier event; returns its event id.
    async fn external<M: prost::Message + TypeName>(
        &self,
        subject: &str,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<String> {
        let message = Outgoing::new(
            subject.to_owned(),
            "test",
            order_id,
            payload,
            &Cause::root(order_id),
        );
        self.svc.bus.publish(&message).await?;
        Ok(message.event_id().to_owned())
    }

    /// Publishes a WMS or carrier event and waits until logistics has
    /// handled it (for a report that is to change nothing and say nothing).
    async fn external_handled<M: prost::Message + TypeName>(
        &self,
        subject: &str,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let event_id = self.external(subject, order_id, payload).await?;
        gendan_tests::handled(&self.svc.pool, &event_id).await
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

    /// The types of every event about `order_id` up to and including the
    /// next `M` (which is returned with its event id): what was said
    /// before a fence event.
    async fn events_until<M: prost::Message + TypeName + Default>(
        &mut self,
        order_id: &str,
    ) -> anyhow::Result<(Vec<String>, M, String)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut types = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(message) = self.events.next(left).await? else {
                anyhow::bail!("no {} about {order_id} within {WAIT:?}", M::TYPE_NAME);
            };
            let envelope = message.envelope()?;
            if envelope.order_id != order_id {
                continue;
            }
            types.push(envelope.r#type.clone());
            if envelope.r#type == M::TYPE_NAME {
                return Ok((types, message.decode()?, envelope.event_id));
            }
        }
    }

    async fn shipment(&mut self, order_id: &str) -> anyhow::Result<Shipment> {
        Ok(self
            .client
            .get_shipment(GetShipmentRequest {
                order_id: order_id.to_owned(),
            })
            .await?
            .into_inner())
    }

    /// The order's bookings: (revision, reference, status).
    async fn bookings(&self, order_id: &str) -> anyhow::Result<Vec<(i32, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT revision, booking_reference, status FROM bookings \
             WHERE order_id = $1 ORDER BY revision",
        )
        .bind(order_id)
        .fetch_all(&self.svc.pool)
        .await?)
    }

    /// What happened to each booking's goods: (revision, bill of lading,
    /// packing list revision, proof of delivery).
    async fn outcomes(
        &self,
        order_id: &str,
    ) -> anyhow::Result<Vec<(i32, Option<String>, Option<i32>, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT revision, bill_of_lading, shipped_list_revision, proof_of_delivery \
             FROM bookings WHERE order_id = $1 ORDER BY revision",
        )
        .bind(order_id)
        .fetch_all(&self.svc.pool)
        .await?)
    }
}

/// 100 shirts for Nordwind, due 2026-03-25.
fn order() -> Order {
    Order {
        order_id: uuid::Uuid::now_v7().to_string(),
        customer: CUSTOMER.into(),
        lines: vec![OrderLine {
            product: "shirt".into(),
            spec: String::new(),
            quantity: 100,
            unit_price_minor: 1250,
        }],
        currency: "USD".into(),
        requested_delivery_date: "2026-03-25".into(),
        incoterm: "FOB".into(),
        payment_terms: "30% T/T deposit, 70% against B/L copy".into(),
        export: true,
        total_minor: 100 * 1250,
        ..Order::default()
    }
}

/// The order as the saga sends it for the replacement of `quantity`
/// claimed shirts: only the claimed line, with the claimed quantity.
fn replacement(order: &Order, quantity: u32) -> Order {
    let mut replacement = order.clone();
    for line in &mut replacement.lines {
        line.quantity = quantity;
    }
    replacement.total_minor = i64::from(quantity) * 1250;
    replacement
}

fn book(order: &Order, revision: u32, redelivery: bool, ready: &str, by: &str) -> BookShipment {
    BookShipment {
        order: Some(order.clone()),
        ready_date: ready.into(),
        deliver_by: by.into(),
        revision,
        redelivery,
    }
}

fn fact(type_name: &str, order_id: &str, key: &str) -> String {
    fact_id("logistics", type_name, order_id, key).to_string()
}

#[tokio::test]
async fn a_redelivery_is_a_new_shipment_and_the_first_stays_on_record() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    let order = order();
    let id = order.order_id.clone();

    // The first shipment: 100 shirts in 5 cartons, booked, shipped,
    // tracked and delivered. Road (Mon 03-09 +12 = 03-21) is in time for
    // the 25th and cheaper than air: 5 cartons x 9.00.
    logistics
        .command(
            &id,
            &PreparePacking {
                order: Some(order.clone()),
                revision: 0,
            },
        )
        .await?;
    let (ready, _) = logistics.event_with_id::<PackingListReady>(&id).await?;
    assert_eq!((ready.cartons, ready.revision), (5, 1));
    logistics
        .command(&id, &book(&order, 1, false, "2026-03-02", ""))
        .await?;
    let (first, _) = logistics.event_with_id::<ShipmentBooked>(&id).await?;
    assert_eq!(
        (
            first.lane_code.as_str(),
            first.etd.as_str(),
            first.freight_cost_minor,
            first.revision
        ),
        ("ROAD-MON", "2026-03-09", 4500, 1)
    );
    let first_shipped = WmsShipped {
        order_id: id.clone(),
        bill_of_lading: "RD-100".into(),
        at: None,
    };
    logistics
        .external(WMS_SHIPPED_SUBJECT, &id, &first_shipped)
        .await?;
    let (shipped, first_shipped_id) = logistics.event_with_id::<Shipped>(&id).await?;
    assert_eq!(
        (shipped.bill_of_lading.as_str(), shipped.revision),
        ("RD-100", 1)
    );
    // The first booking keeps the key Shipped had before revisions.
    assert_eq!(
        first_shipped_id,
        fact(Shipped::TYPE_NAME, &id, "shipped:RD-100")
    );
    let first_tracking = CarrierTracking {
        order_id: id.clone(),
        booking_reference: first.booking_reference.clone(),
        status: "in transit".into(),
        location: "Hamburg".into(),
        at: None,
        eta: String::new(),
    };
    logistics
        .external(CARRIER_TRACKING_SUBJECT, &id, &first_tracking)
        .await?;
    logistics.event_with_id::<TrackingUpdated>(&id).await?;
    let first_delivered = CarrierDelivered {
        order_id: id.clone(),
        booking_reference: first.booking_reference.clone(),
        proof_of_delivery: "POD-1 signed by K. Vogel".into(),
        at: None,
    };
    logistics
        .external(CARRIER_DELIVERED_SUBJECT, &id, &first_delivered)
        .await?;
    let (delivered, first_delivered_id) = logistics.event_with_id::<Delivered>(&id).await?;
    assert_eq!(delivered.revision, 1);
    assert_eq!(
        first_delivered_id,
        fact(Delivered::TYPE_NAME, &id, "delivered")
    );

    // A month later the customer's claim on 2 shirts is resolved by a
    // replacement: the saga packs the claimed goods under the next
    // revision (one carton) and books them as a redelivery. Ready before
    // today (Wednesday 2026-04-01), so it books from today: cut-off Friday
    // 04-03; sea leaves that day and arrives 05-03, in time for the 31st
    // and the cheapest for one carton.
    logistics.clock.advance(chrono::Duration::days(30));
    let claimed = replacement(&order, 2);
    logistics
        .command(
            &id,
            &PreparePacking {
                order: Some(claimed.clone()),
                revision: 2,
            },
        )
        .await?;
    let (ready, _) = logistics.event_with_id::<PackingListReady>(&id).await?;
    assert_eq!((ready.cartons, ready.revision), (1, 2));
    let redeliver = book(&claimed, 2, true, "2026-03-30", "2026-05-31");
    logistics.command(&id, &redeliver).await?;
    let (second, second_id) = logistics.event_with_id::<ShipmentBooked>(&id).await?;
    assert_ne!(second.booking_reference, first.booking_reference);
    assert_eq!(
        (
            second.lane_code.as_str(),
            second.etd.as_str(),
            second.eta.as_str(),
            second.revision
        ),
        ("SEA-FRI", "2026-04-03", "2026-05-03", 2)
    );
    assert_eq!(second.freight_cost_minor, 400, "one carton, not five");
    assert!(second.meets_requested_date);
    let booked_key = format!("{}#2", second.booking_reference);
    assert_eq!(
        second_id,
        fact(ShipmentBooked::TYPE_NAME, &id, &booked_key),
        "a booking is one fact"
    );

    // Re-sent: the same booking, the same fact; one more booking only.
    logistics.repeat(&id, &redeliver).await?;
    assert_eq!(
        logistics.bookings(&id).await?,
        [
            (1, first.booking_reference.clone(), "booked".to_owned()),
            (2, second.booking_reference.clone(), "booked".to_owned()),
        ]
    );
    let current = logistics.shipment(&id).await?;
    assert_eq!(
        (
            current.status.as_str(),
            current.booking_reference.as_str(),
            current.etd.as_str(),
            current.bill_of_lading.as_str(),
            current.delivered_on.as_str(),
            current.proof_of_delivery.as_str()
        ),
        (
            "booked",
            second.booking_reference.as_str(),
            "2026-04-03",
            "",
            "",
            ""
        )
    );
    assert!(current.tracking.is_empty(), "{:?}", current.tracking);

    // The first shipment's shipped report again is not the replacement's.
    logistics
        .external_handled(WMS_SHIPPED_SUBJECT, &id, &first_shipped)
        .await?;
    let current = logistics.shipment(&id).await?;
    assert_eq!(
        (current.status.as_str(), current.bill_of_lading.as_str()),
        ("booked", "")
    );

    // The replacement leaves: a Shipped of revision 2, a new fact. Nothing
    // was said in between (the re-sent booking kept its event id, the old
    // report said nothing).
    let second_shipped = WmsShipped {
        bill_of_lading: "SEA-200".into(),
        ..first_shipped.clone()
    };
    logistics
        .external(WMS_SHIPPED_SUBJECT, &id, &second_shipped)
        .await?;
    let (between, shipped, second_shipped_id) = logistics.events_until::<Shipped>(&id).await?;
    assert_eq!(between, [Shipped::TYPE_NAME]);
    assert_eq!(
        (shipped.bill_of_lading.as_str(), shipped.revision),
        ("SEA-200", 2)
    );
    assert_eq!(
        second_shipped_id,
        fact(Shipped::TYPE_NAME, &id, "shipped#2:SEA-200")
    );
    assert_ne!(second_shipped_id, first_shipped_id);

    let second_tracking = CarrierTracking {
        booking_reference: second.booking_reference.clone(),
        location: "Rotterdam".into(),
        ..first_tracking.clone()
    };
    logistics
        .external(CARRIER_TRACKING_SUBJECT, &id, &second_tracking)
        .await?;
    let (between, tracked, _) = logistics.events_until::<TrackingUpdated>(&id).await?;
    assert_eq!(between, [TrackingUpdated::TYPE_NAME]);
    assert_eq!(tracked.location, "Rotterdam");

    // The first shipment's delivery reported again, quoting its booking:
    // the replacement is still on its way.
    logistics
        .external_handled(CARRIER_DELIVERED_SUBJECT, &id, &first_delivered)
        .await?;
    let current = logistics.shipment(&id).await?;
    assert_eq!(
        (
            current.status.as_str(),
            current.delivered_on.as_str(),
            current.proof_of_delivery.as_str()
        ),
        ("shipped", "", "")
    );

    // The replacement arrives: a Delivered of revision 2, a new fact, and
    // nothing said for the old report before it.
    let second_delivered = CarrierDelivered {
        booking_reference: second.booking_reference.clone(),
        proof_of_delivery: "POD-2 signed by K. Vogel".into(),
        ..first_delivered.clone()
    };
    logistics
        .external(CARRIER_DELIVERED_SUBJECT, &id, &second_delivered)
        .await?;
    let (between, delivered, second_delivered_id) =
        logistics.events_until::<Delivered>(&id).await?;
    assert_eq!(between, [Delivered::TYPE_NAME]);
    assert_eq!(
        (delivered.proof_of_delivery.as_str(), delivered.revision),
        ("POD-2 signed by K. Vogel", 2)
    );
    assert_eq!(
        second_delivered_id,
        fact(Delivered::TYPE_NAME, &id, "delivered#2")
    );
    assert_ne!(second_delivered_id, first_delivered_id);

    // The order's shipment is the replacement's, with its own tracking;
    // each booking keeps what happened to its goods.
    let current = logistics.shipment(&id).await?;
    assert_eq!(
        (
            current.status.as_str(),
            current.booking_reference.as_str(),
            current.bill_of_lading.as_str(),
            current.proof_of_delivery.as_str()
        ),
        (
            "delivered",
            second.booking_reference.as_str(),
            "SEA-200",
            "POD-2 signed by K. Vogel"
        )
    );
    let locations: Vec<&str> = current
        .tracking
        .iter()
        .map(|entry| entry.location.as_str())
        .collect();
    assert_eq!(locations, ["Rotterdam"]);
    assert_eq!(
        logistics.outcomes(&id).await?,
        [
            (
                1,
                Some("RD-100".to_owned()),
                Some(1),
                Some("POD-1 signed by K. Vogel".to_owned())
            ),
            (
                2,
                Some("SEA-200".to_owned()),
                Some(2),
                Some("POD-2 signed by K. Vogel".to_owned())
            ),
        ]
    );

    // The carrier says it twice: the same Delivered under the same event
    // id, so nothing new reaches the bus before the claims below.
    logistics
        .external_handled(CARRIER_DELIVERED_SUBJECT, &id, &second_delivered)
        .await?;

    // A claim against each booking counts what travelled under it: the
    // whole first shipment is 100 shirts, the whole replacement 2.
    for (booking, whole) in [(&first, 100), (&second, 2)] {
        let damaged = CarrierCargoException {
            order_id: id.clone(),
            booking_reference: booking.booking_reference.clone(),
            kind: "damaged".into(),
            description: "cartons wet".into(),
            quantity: 0,
            at: None,
        };
        logistics
            .external(CARRIER_CARGO_EXCEPTION_SUBJECT, &id, &damaged)
            .await?;
        let (between, opened, _) = logistics.events_until::<CargoClaimOpened>(&id).await?;
        assert_eq!(between, [CargoClaimOpened::TYPE_NAME]);
        assert_eq!(
            (opened.booking_reference.as_str(), opened.quantity),
            (booking.booking_reference.as_str(), whole)
        );
    }

    logistics.stop().await
}
