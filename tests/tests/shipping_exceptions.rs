//! Shipping exceptions in the logistics service against real NATS and
//! PostgreSQL (DESIGN §2 row 9): re-booking by revision after a missed ETD,
//! the chasing worker reporting a missed ETD once (on a manual clock), and
//! carrier claims for lost or damaged cargo.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_logistics::chasing::ChasingWorker;
use gendan_logistics::{
    Application, CARRIER_CARGO_EXCEPTION_SUBJECT, CARRIER_TRACKING_SUBJECT, ManualClock, Options,
    WMS_SHIPPED_SUBJECT,
};
use gendan_messaging::{Cause, Outgoing, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::logistics_service_client::LogisticsServiceClient;
use gendan_proto::v1::{
    BookShipment, CargoClaimOpened, CarrierCargoException, CarrierLane, CarrierTracking,
    GetShipmentRequest, Order, OrderLine, PackingListReady, PackingSpec, PreparePacking,
    ProductMaster, ShipmentBooked, ShipmentLate, Shipped, TrackingUpdated, WmsShipped,
};
use gendan_tests::{Running, SubjectReader};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);
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
    dead_letters: SubjectReader,
}

impl Logistics {
    /// The service on a clock standing at Monday 2026-03-02, the day the
    /// orders here are ready, with the lanes and data of [`Self::seed`].
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
        let dead_letters = SubjectReader::open(
            &svc.nats.url,
            streams::DEAD_LETTERS,
            "gendan.dlq.logistics-carrier",
        )
        .await?;
        let mut logistics = Logistics {
            svc,
            clock,
            client,
            events,
            dead_letters,
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

    async fn publish<M: prost::Message + TypeName>(
        &self,
        subject: String,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let message = Outgoing::new(subject, "test", order_id, payload, &Cause::root(order_id));
        self.svc.bus.publish(&message).await?;
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
        self.svc.repeat(order_id, payload).await
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
        self.svc.bus.publish(&message).await?;
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
            let seen = self.events.next_of_type(M::TYPE_NAME, left).await?;
            if seen.envelope()?.order_id == order_id {
                return seen.decode();
            }
        }
    }

    /// The types of every event about `order_id` up to and including the
    /// next `M`: what happened before a fence event.
    async fn events_until<M: TypeName>(&mut self, order_id: &str) -> anyhow::Result<Vec<String>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(message) = self.events.next(left).await? else {
                anyhow::bail!("no {} about {order_id} within {WAIT:?}", M::TYPE_NAME);
            };
            let envelope = message.envelope()?;
            if envelope.order_id != order_id {
                continue;
            }
            seen.push(envelope.r#type.clone());
            if envelope.r#type == M::TYPE_NAME {
                return Ok(seen);
            }
        }
    }

    /// The reason of the carrier consumer's next dead letter.
    async fn dead_letter(&mut self) -> anyhow::Result<String> {
        let seen = self
            .dead_letters
            .next(WAIT)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no dead letter on logistics-carrier"))?;
        Ok(seen.header("Gendan-Dlq-Reason").unwrap_or_default())
    }

    /// A packed order of 240 shirts (10 cartons, 68 kg), booked as
    /// revision 1, ready today (2026-03-02): road, ETD Monday 2026-03-09.
    async fn booked_order(&mut self) -> anyhow::Result<(Order, ShipmentBooked)> {
        let order = order();
        let id = order.order_id.clone();
        let prepare = PreparePacking {
            revision: 0,
            order: Some(order.clone()),
        };
        self.command(&id, &prepare).await?;
        assert_eq!(self.event::<PackingListReady>(&id).await?.cartons, 10);
        self.command(&id, &book(&order, 1)).await?;
        let booked = self.event::<ShipmentBooked>(&id).await?;
        assert_eq!(
            (
                booked.lane_code.as_str(),
                booked.etd.as_str(),
                booked.revision
            ),
            ("ROAD-MON", "2026-03-09", 1)
        );
        Ok((order, booked))
    }

    async fn ship(&mut self, order_id: &str, bill_of_lading: &str) -> anyhow::Result<Shipped> {
        let shipped = WmsShipped {
            order_id: order_id.to_owned(),
            bill_of_lading: bill_of_lading.to_owned(),
            at: None,
        };
        self.publish(WMS_SHIPPED_SUBJECT.to_owned(), order_id, &shipped)
            .await?;
        self.event::<Shipped>(order_id).await
    }

    /// The order's bookings: (revision, reference, status, days reported late).
    async fn bookings(
        &self,
        order_id: &str,
    ) -> anyhow::Result<Vec<(i32, String, String, Option<i32>)>> {
        Ok(sqlx::query_as(
            "SELECT revision, booking_reference, status, days_late FROM bookings \
             WHERE order_id = $1 ORDER BY revision",
        )
        .bind(order_id)
        .fetch_all(&self.svc.pool)
        .await?)
    }

    /// A chasing pass of its own, on the service's clock: how many bookings
    /// it reported.
    async fn chase(&self) -> anyhow::Result<usize> {
        let worker = ChasingWorker::new(
            self.svc.pool.clone(),
            Arc::new(self.clock.clone()),
            Duration::from_secs(60),
        );
        Ok(worker.pass().await?)
    }
}

/// 240 shirts for Nordwind, due 2026-03-25.
fn order() -> Order {
    Order {
        order_id: uuid::Uuid::now_v7().to_string(),
        customer: CUSTOMER.into(),
        lines: vec![OrderLine {
            product: "shirt".into(),
            spec: String::new(),
            quantity: 240,
            unit_price_minor: 1250,
        }],
        currency: "USD".into(),
        requested_delivery_date: "2026-03-25".into(),
        incoterm: "FOB".into(),
        payment_terms: "30% T/T deposit, 70% against B/L copy".into(),
        export: true,
        total_minor: 240 * 1250,
        ..Order::default()
    }
}

fn book(order: &Order, revision: u32) -> BookShipment {
    BookShipment {
        redelivery: false,
        order: Some(order.clone()),
        ready_date: "2026-03-02".into(),
        deliver_by: String::new(),
        revision,
    }
}

#[tokio::test]
async fn a_new_revision_re_books_and_keeps_the_first_booking_on_record() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    let (order, first) = logistics.booked_order().await?;
    let id = order.order_id.clone();

    // The same revision again: the same booking, said as the same fact.
    logistics.repeat(&id, &book(&order, 1)).await?;

    // The ETD passed without the goods (Wednesday 2026-03-11): revision 2
    // books from today, not from the stale ready date. Cut-off Friday
    // 03-13; road (Mon 03-16 +12) and sea (Fri 03-13 +30) arrive after the
    // 25th, air (Tue 03-17 +3) in time at 68 kg x 4.50.
    logistics.clock.advance(chrono::Duration::days(9));
    logistics.command(&id, &book(&order, 2)).await?;
    let (second, event_id) = logistics.event_with_id::<ShipmentBooked>(&id).await?;
    let key = format!("{}#2", second.booking_reference);
    let fact = gendan_messaging::fact_id("logistics", ShipmentBooked::TYPE_NAME, &id, &key);
    assert_eq!(event_id, fact.to_string(), "a booking is one fact");
    assert_ne!(second.booking_reference, first.booking_reference);
    assert_eq!(
        (
            second.lane_code.as_str(),
            second.etd.as_str(),
            second.eta.as_str(),
            second.revision
        ),
        ("AIR-TUE", "2026-03-17", "2026-03-20", 2)
    );
    assert_eq!(second.freight_cost_minor, 30600);
    assert!(second.meets_requested_date);

    // Each revision re-sent answers its own booking (the same facts again:
    // nothing new on the bus, nothing new booked).
    logistics.repeat(&id, &book(&order, 2)).await?;
    logistics.repeat(&id, &book(&order, 1)).await?;

    let bookings = logistics.bookings(&id).await?;
    let summary: Vec<(i32, &str, &str)> = bookings
        .iter()
        .map(|(revision, reference, status, _)| (*revision, reference.as_str(), status.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, first.booking_reference.as_str(), "cancelled"),
            (2, second.booking_reference.as_str(), "booked"),
        ]
    );
    let shipment = logistics
        .client
        .get_shipment(GetShipmentRequest {
            order_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(
        (
            shipment.status.as_str(),
            shipment.booking_reference.as_str(),
            shipment.etd.as_str()
        ),
        ("booked", second.booking_reference.as_str(), "2026-03-17")
    );

    logistics.stop().await
}

#[tokio::test]
async fn a_missed_etd_is_chased_once_and_shipped_goods_never() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    let (late_order, late_booking) = logistics.booked_order().await?;
    let late_id = late_order.order_id.clone();
    let (gone_order, _) = logistics.booked_order().await?;
    let gone_id = gone_order.order_id.clone();
    logistics.ship(&gone_id, "RD-100200").await?;

    // On the ETD day itself nothing is late.
    logistics.clock.advance(chrono::Duration::days(7));
    assert_eq!(logistics.chase().await?, 0);

    // Wednesday 2026-03-11: two days past the ETD, still not shipped.
    logistics.clock.advance(chrono::Duration::days(2));
    let late = logistics.event::<ShipmentLate>(&late_id).await?;
    assert_eq!(
        late,
        ShipmentLate {
            order_id: late_id.clone(),
            booking_reference: late_booking.booking_reference.clone(),
            etd: "2026-03-09".into(),
            days_late: 2,
            revision: 1,
        }
    );
    // Reported once, however late it gets; the shipped order never.
    assert_eq!(logistics.chase().await?, 0);
    logistics.clock.advance(chrono::Duration::days(3));
    assert_eq!(logistics.chase().await?, 0);
    assert_eq!(
        logistics.bookings(&late_id).await?[0].3,
        Some(2),
        "reported 2 days late"
    );
    assert_eq!(logistics.bookings(&gone_id).await?[0].3, None);

    // The saga re-books (Saturday 03-14: cut-off Monday 03-16, air Tue
    // 03-17); the new booking is chased on its own ETD.
    logistics.command(&late_id, &book(&late_order, 2)).await?;
    let rebooked = logistics.event::<ShipmentBooked>(&late_id).await?;
    assert_eq!(
        (rebooked.etd.as_str(), rebooked.revision),
        ("2026-03-17", 2)
    );
    logistics.clock.advance(chrono::Duration::days(4));
    let late_again = logistics.event::<ShipmentLate>(&late_id).await?;
    assert_eq!(
        (
            late_again.booking_reference.as_str(),
            late_again.days_late,
            late_again.revision
        ),
        (rebooked.booking_reference.as_str(), 1, 2)
    );
    let days_late: Vec<Option<i32>> = logistics
        .bookings(&late_id)
        .await?
        .into_iter()
        .map(|(_, _, _, days)| days)
        .collect();
    assert_eq!(days_late, [Some(2), Some(1)]);
    assert_eq!(logistics.chase().await?, 0);

    logistics.stop().await
}

#[tokio::test]
async fn cargo_exceptions_open_one_claim_per_kind_and_bad_ones_are_dead_lettered()
-> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    let (order, booked) = logistics.booked_order().await?;
    let id = order.order_id.clone();
    logistics.ship(&id, "RD-100300").await?;

    let damaged = CarrierCargoException {
        order_id: id.clone(),
        booking_reference: booked.booking_reference.clone(),
        kind: "damaged".into(),
        description: "carton 7 crushed, wet".into(),
        quantity: 24,
        at: None,
    };
    let subject = CARRIER_CARGO_EXCEPTION_SUBJECT.to_owned();
    logistics.publish(subject.clone(), &id, &damaged).await?;
    let opened = logistics.event::<CargoClaimOpened>(&id).await?;
    assert!(opened.claim_id.starts_with("CLM-"), "{}", opened.claim_id);
    assert_eq!(
        (
            opened.booking_reference.as_str(),
            opened.kind.as_str(),
            opened.description.as_str(),
            opened.quantity
        ),
        (
            booked.booking_reference.as_str(),
            "damaged",
            "carton 7 crushed, wet",
            24
        )
    );

    // The same report again adds nothing: a tracking update behind it on
    // the same consumer shows it was handled.
    logistics.publish(subject.clone(), &id, &damaged).await?;
    let tracking = CarrierTracking {
        order_id: id.clone(),
        booking_reference: booked.booking_reference.clone(),
        status: "in transit".into(),
        location: "Hangzhou hub".into(),
        at: None,
        eta: String::new(),
    };
    logistics
        .publish(CARRIER_TRACKING_SUBJECT.to_owned(), &id, &tracking)
        .await?;
    let between = logistics.events_until::<TrackingUpdated>(&id).await?;
    assert_eq!(between, [TrackingUpdated::TYPE_NAME]);
    let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM cargo_claims WHERE order_id = $1")
        .bind(&id)
        .fetch_one(&logistics.svc.pool)
        .await?;
    assert_eq!(claims, 1);

    // Lost is another claim, but not of more than was shipped beside the 24
    // claimed damaged: 0 units (the whole shipment) is refused.
    let lost_all = CarrierCargoException {
        kind: "lost".into(),
        description: "container overboard".into(),
        quantity: 0,
        ..damaged.clone()
    };
    logistics.publish(subject.clone(), &id, &lost_all).await?;
    let reason = logistics.dead_letter().await?;
    assert!(reason.contains("quantity"), "{reason}");
    let lost = CarrierCargoException {
        quantity: 216,
        ..lost_all
    };
    logistics.publish(subject.clone(), &id, &lost).await?;
    let opened_lost = logistics.event::<CargoClaimOpened>(&id).await?;
    assert_eq!(
        (opened_lost.kind.as_str(), opened_lost.quantity),
        ("lost", 216)
    );
    assert_ne!(opened_lost.claim_id, opened.claim_id);

    let stolen = CarrierCargoException {
        kind: "stolen".into(),
        ..damaged.clone()
    };
    logistics.publish(subject.clone(), &id, &stolen).await?;
    let reason = logistics.dead_letter().await?;
    assert!(reason.contains("kind"), "{reason}");
    assert!(reason.contains("stolen"), "{reason}");

    let too_many = CarrierCargoException {
        quantity: 241,
        ..damaged.clone()
    };
    logistics.publish(subject.clone(), &id, &too_many).await?;
    let reason = logistics.dead_letter().await?;
    assert!(reason.contains("quantity"), "{reason}");

    let elsewhere = CarrierCargoException {
        booking_reference: "ROAD-MON-20260309-NOTOURS".into(),
        ..damaged
    };
    logistics.publish(subject, &id, &elsewhere).await?;
    let reason = logistics.dead_letter().await?;
    assert!(reason.contains("booking_reference"), "{reason}");

    logistics.stop().await
}
