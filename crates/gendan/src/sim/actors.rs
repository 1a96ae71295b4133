//! The actors of the outside world and the dispatch of gendan's events to
//! them. Every reaction runs in its own task, waits its simulated time, then
//! answers over gRPC or publishes an external event, as the real party would.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::Utc;
use gendan_messaging::{Bus, Cause, Outgoing, subjects};
use gendan_proto::v1::{self, Envelope, Phase};
use gendan_proto::{TypeName, timestamp_from};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Code;

use super::rng::Lcg;
use super::{Clients, SimOptions, SimStats, barcode};

const WMS_GOODS_RECEIVED: &str = "gendan.ext.wms.inbound.goods_received";
const WMS_PACKED: &str = "gendan.ext.wms.outbound.packed";
const WMS_SHIPPED: &str = "gendan.ext.wms.outbound.shipped";
const CARRIER_TRACKING: &str = "gendan.ext.carrier.tracking";
const CARRIER_DELIVERED: &str = "gendan.ext.carrier.delivered";

/// Counters behind [`SimStats`].
#[derive(Default)]
pub(crate) struct Counters {
    events_seen: AtomicU64,
    mes_stages: AtomicU64,
    purchase_orders_confirmed: AtomicU64,
    goods_received: AtomicU64,
    inspections_recorded: AtomicU64,
    packed: AtomicU64,
    shipped: AtomicU64,
    tracking_updates: AtomicU64,
    delivered: AtomicU64,
    accepted: AtomicU64,
    payments: AtomicU64,
    decisions_answered: AtomicU64,
    errors: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn error(&self) {
        bump(&self.errors);
    }

    pub(crate) fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            events_seen: get(&self.events_seen),
            mes_stages: get(&self.mes_stages),
            purchase_orders_confirmed: get(&self.purchase_orders_confirmed),
            goods_received: get(&self.goods_received),
            inspections_recorded: get(&self.inspections_recorded),
            packed: get(&self.packed),
            shipped: get(&self.shipped),
            tracking_updates: get(&self.tracking_updates),
            delivered: get(&self.delivered),
            accepted: get(&self.accepted),
            payments: get(&self.payments),
            decisions_answered: get(&self.decisions_answered),
            errors: get(&self.errors),
        }
    }
}

/// A booking as the carrier knows it.
#[derive(Debug, Clone)]
struct Booking {
    reference: String,
    mode: String,
    transit_days: i64,
}

/// Everything the actors share.
pub(crate) struct World {
    bus: Bus,
    clients: Clients,
    options: SimOptions,
    pub(crate) stats: Counters,
    /// Reactions already started, so an answer announced twice (a re-sent
    /// command answers again with a new event id) is acted on once.
    started: Mutex<HashSet<String>>,
    bookings: Mutex<HashMap<String, Booking>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Simulated days since `epoch`, per order: each reaction happens a
    /// number of days after the event it answers, so an order's clock
    /// follows its critical path, whatever the real processing takes.
    clocks: Mutex<HashMap<String, f64>>,
    epoch: chrono::DateTime<Utc>,
}

fn is<M: TypeName>(envelope: &Envelope) -> bool {
    envelope.r#type == M::TYPE_NAME
}

fn decode<M: Message + Default>(envelope: &Envelope) -> anyhow::Result<M> {
    M::decode(envelope.payload.as_slice())
        .with_context(|| format!("undecodable {} payload", envelope.r#type))
}

/// The first eight characters of an id (order and PO prefixes).
fn prefix(id: &str) -> String {
    id.chars().take(8).collect()
}

/// Retries a gRPC call while it fails with one of `codes` (the other
/// service has not caught up yet), up to about a minute.
async fn retry<T, F, Fut>(codes: &[Code], mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut wait = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        match call().await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status)
                if attempt < 40
                    && (codes.contains(&status.code()) || status.code() == Code::Unavailable) =>
            {
                attempt += 1;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(status) => return Err(status),
        }
    }
}

impl World {
    pub(crate) fn new(
        bus: Bus,
        clients: Clients,
        options: SimOptions,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        World {
            bus,
            clients,
            options,
            stats: Counters::default(),
            started: Mutex::new(HashSet::new()),
            bookings: Mutex::new(HashMap::new()),
            cancel,
            tracker,
            clocks: Mutex::new(HashMap::new()),
            epoch: Utc::now(),
        }
    }

    fn clock(&self, order_id: &str) -> f64 {
        self.clocks
            .lock()
            .map(|clocks| clocks.get(order_id).copied().unwrap_or(0.0))
            .unwrap_or(0.0)
    }

    /// Waits `days` of simulated time on behalf of `order_id` and moves the
    /// order's clock to the end of the wait.
    async fn pause_on(&self, order_id: &str, days: f64) {
        let start = self.clock(order_id);
        self.pause(days).await;
        if let Ok(mut clocks) = self.clocks.lock() {
            let clock = clocks.entry(order_id.to_owned()).or_insert(0.0);
            *clock = clock.max(start + days.max(0.0));
        }
    }

    /// The simulated time of `order_id`, stamped on what the MES, the
    /// warehouse and the carrier report, so a demo of weeks shows weeks of
    /// lead time. At full speed (no day length) it is the real time.
    fn now(&self, order_id: &str) -> chrono::DateTime<Utc> {
        if self.options.day.is_zero() {
            return Utc::now();
        }
        let days = self.clock(order_id);
        self.epoch + chrono::Duration::milliseconds((days * 86_400_000.0) as i64)
    }

    /// True the first time `key` is seen.
    fn first(&self, key: String) -> bool {
        self.started
            .lock()
            .map(|mut started| started.insert(key))
            .unwrap_or(false)
    }

    /// Waits `days` simulated days.
    async fn pause(&self, days: f64) {
        let wait = self.options.day.mul_f64(days.max(0.0));
        if wait.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(wait).await;
        }
    }

    fn rng(&self, key: &str) -> Lcg {
        Lcg::for_key(self.options.seed, key)
    }

    /// Runs one reaction in its own task; failures are counted and logged.
    fn react<Fut>(self: &Arc<Self>, actor: &'static str, order_id: String, reaction: Fut)
    where
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let world = self.clone();
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                result = reaction => {
                    if let Err(err) = result {
                        world.stats.error();
                        tracing::warn!(actor, %order_id, error = format!("{err:#}"), "simulated actor failed");
                    }
                }
            }
        });
    }

    /// Decodes one bus message and hands it to the actor it concerns.
    pub(crate) fn dispatch(self: &Arc<Self>, bytes: &[u8]) {
        bump(&self.stats.events_seen);
        let envelope = match Envelope::decode(bytes) {
            Ok(envelope) => envelope,
            Err(err) => {
                self.stats.error();
                tracing::warn!(error = %err, "simulator: undecodable envelope");
                return;
            }
        };
        if let Err(err) = self.route(&envelope) {
            self.stats.error();
            tracing::warn!(r#type = %envelope.r#type, error = format!("{err:#}"), "simulator: cannot handle event");
        }
    }

    fn route(self: &Arc<Self>, envelope: &Envelope) -> anyhow::Result<()> {
        let order_id = envelope.order_id.clone();
        if is::<v1::PhaseChanged>(envelope) {
            let event: v1::PhaseChanged = decode(envelope)?;
            if event.to == Phase::Production as i32 && self.first(format!("mes:{}", event.order_id))
            {
                let world = self.clone();
                self.react(
                    "mes",
                    order_id,
                    async move { world.mes(event.order_id).await },
                );
            }
        } else if is::<v1::PurchaseOrderPlaced>(envelope) {
            let event: v1::PurchaseOrderPlaced = decode(envelope)?;
            if self.first(format!("po:{}", event.purchase_order_id)) {
                let world = self.clone();
                self.react(
                    "supplier",
                    order_id,
                    async move { world.supplier(event).await },
                );
            }
        } else if is::<v1::IncomingInspectionOpened>(envelope) {
            let event: v1::IncomingInspectionOpened = decode(envelope)?;
            if self.first(format!("qa:{}", event.inspection_id)) {
                let world = self.clone();
                self.react("qa", order_id, async move {
                    world.inspect(event.inspection_id, event.sample_size).await
                });
            }
        } else if is::<v1::FinalInspectionOpened>(envelope) {
            let event: v1::FinalInspectionOpened = decode(envelope)?;
            if self.first(format!("qa:{}", event.inspection_id)) {
                let world = self.clone();
                self.react("qa", order_id, async move {
                    world.inspect(event.inspection_id, event.sample_size).await
                });
            }
        } else if is::<v1::InProcessInspectionOpened>(envelope) {
            let event: v1::InProcessInspectionOpened = decode(envelope)?;
            if self.first(format!("qa:{}", event.inspection_id)) {
                let world = self.clone();
                self.react("qa", order_id, async move {
                    world.inspect(event.inspection_id, event.sample_size).await
                });
            }
        } else if is::<v1::PackingListReady>(envelope) {
            let event: v1::PackingListReady = decode(envelope)?;
            if self.first(format!("pack:{}", event.order_id)) {
                let world = self.clone();
                self.react(
                    "wms",
                    order_id,
                    async move { world.pack(event.order_id).await },
                );
            }
        } else if is::<v1::ShipmentBooked>(envelope) {
            let event: v1::ShipmentBooked = decode(envelope)?;
            if let Ok(mut bookings) = self.bookings.lock() {
                bookings.insert(event.order_id.clone(), booking_of(&event));
            }
            if self.first(format!("ship:{}", event.order_id)) {
                let world = self.clone();
                self.react(
                    "wms",
                    order_id,
                    async move { world.ship(event.order_id).await },
                );
            }
        } else if is::<v1::Shipped>(envelope) {
            let event: v1::Shipped = decode(envelope)?;
            if self.first(format!("carry:{}", event.order_id)) {
                let world = self.clone();
                self.react("carrier", order_id, async move {
                    world.carry(event.order_id).await
                });
            }
        } else if is::<v1::Delivered>(envelope) {
            let event: v1::Delivered = decode(envelope)?;
            if self.first(format!("accept:{}", event.order_id)) {
                let world = self.clone();
                self.react("customer", order_id, async move {
                    world.accept(event.order_id).await
                });
            }
        } else if is::<v1::DecisionRequested>(envelope) {
            let event: v1::DecisionRequested = decode(envelope)?;
            let Some(decision) = event.decision else {
                return Ok(());
            };
            if !event.reminder
                && decision.kind == "delivery_date"
                && self.first(format!("decide:{}", decision.decision_id))
            {
                let world = self.clone();
                self.react(
                    "customer",
                    order_id,
                    async move { world.decide(decision).await },
                );
            }
        } else if is::<v1::InvoiceIssued>(envelope) {
            let event: v1::InvoiceIssued = decode(envelope)?;
            if self.first(format!("pay:{}", event.invoice_id)) {
                let world = self.clone();
                self.react("bank", order_id, async move { world.pay(event).await });
            }
        }
        Ok(())
    }

    async fn publish<M: Message + TypeName>(
        &self,
        subject: &str,
        source: &str,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let message = Outgoing::new(
            subject.to_owned(),
            source,
            order_id,
            payload,
            &Cause::root(order_id),
        );
        self.bus
            .publish(&message)
            .await
            .with_context(|| format!("publishing {} on {subject}", M::TYPE_NAME))
    }

    async fn customer_of(&self, order_id: &str) -> anyhow::Result<String> {
        let orders = self.clients.orders.clone();
        let order = retry(&[Code::NotFound], || {
            let mut orders = orders.clone();
            let request = v1::GetOrderRequest {
                order_id: order_id.to_owned(),
            };
            async move { orders.get_order(request).await }
        })
        .await
        .with_context(|| format!("reading order {order_id}"))?;
        Ok(order.customer)
    }

    // ---- MES ----

    /// The factory works through the work order: every stage started,
    /// reported (planned quantity good, 0–2% scrap) and completed, one
    /// simulated day per stage.
    async fn mes(&self, order_id: String) -> anyhow::Result<()> {
        let production = self.clients.production.clone();
        let work_order = retry(&[Code::NotFound], || {
            let mut production = production.clone();
            let request = v1::GetWorkOrderRequest {
                order_id: order_id.clone(),
            };
            async move { production.get_work_order(request).await }
        })
        .await
        .context("reading the work order")?;
        let mut rng = self.rng(&order_id);
        let source = "mes:sim";
        for stage in &work_order.stages {
            if stage.status == "completed" {
                continue;
            }
            let started = v1::MesStageStarted {
                order_id: order_id.clone(),
                product: stage.product.clone(),
                stage: stage.stage.clone(),
                at: Some(timestamp_from(self.now(&order_id))),
            };
            self.publish(&subjects::mes("stage_started"), source, &order_id, &started)
                .await?;
            self.pause_on(&order_id, 1.0).await;
            let scrap = (u64::from(stage.planned_quantity) * rng.below(3) / 100) as u32;
            let reported = v1::MesQuantityReported {
                order_id: order_id.clone(),
                product: stage.product.clone(),
                stage: stage.stage.clone(),
                good: stage.planned_quantity,
                scrap,
                at: Some(timestamp_from(self.now(&order_id))),
            };
            self.publish(
                &subjects::mes("quantity_reported"),
                source,
                &order_id,
                &reported,
            )
            .await?;
            let completed = v1::MesStageCompleted {
                order_id: order_id.clone(),
                product: stage.product.clone(),
                stage: stage.stage.clone(),
                at: Some(timestamp_from(self.now(&order_id))),
            };
            self.publish(
                &subjects::mes("stage_completed"),
                source,
                &order_id,
                &completed,
            )
            .await?;
            bump(&self.stats.mes_stages);
        }
        Ok(())
    }

    // ---- supplier ----

    /// The supplier confirms the PO for its expected date, then delivers
    /// the full quantity after the lead time.
    async fn supplier(&self, po: v1::PurchaseOrderPlaced) -> anyhow::Result<()> {
        self.pause_on(&po.order_id, 0.2).await;
        let procurement = self.clients.procurement.clone();
        let request = v1::ConfirmPurchaseOrderRequest {
            purchase_order_id: po.purchase_order_id.clone(),
            confirmed_eta: po.expected_date.clone(),
        };
        retry(&[Code::NotFound], || {
            let mut procurement = procurement.clone();
            let request = request.clone();
            async move { procurement.confirm_purchase_order(request).await }
        })
        .await
        .with_context(|| format!("confirming purchase order {}", po.purchase_order_id))?;
        bump(&self.stats.purchase_orders_confirmed);

        let today = Utc::now().date_naive();
        let lead_days = gendan_proto::date_from_str(&po.expected_date)
            .map(|expected| (expected - today).num_days())
            .unwrap_or(1)
            .max(1);
        self.pause_on(&po.order_id, lead_days as f64).await;
        let received = v1::WmsGoodsReceived {
            purchase_order_id: po.purchase_order_id.clone(),
            material: po.material.clone(),
            quantity: po.quantity,
            lot: format!("LOT-{}-1", prefix(&po.purchase_order_id)),
            at: Some(timestamp_from(self.now(&po.order_id))),
        };
        self.publish(WMS_GOODS_RECEIVED, "wms:sim", &po.order_id, &received)
            .await?;
        bump(&self.stats.goods_received);
        Ok(())
    }

    // ---- QA ----

    /// The inspector draws the plan's sample and finds nothing wrong.
    async fn inspect(&self, inspection_id: String, sample_size: u32) -> anyhow::Result<()> {
        self.pause(0.2).await;
        let quality = self.clients.quality.clone();
        let sample = if sample_size > 0 {
            sample_size
        } else {
            let inspection = retry(&[Code::NotFound], || {
                let mut quality = quality.clone();
                let request = v1::GetInspectionRequest {
                    inspection_id: inspection_id.clone(),
                };
                async move { quality.get_inspection(request).await }
            })
            .await
            .with_context(|| format!("reading inspection {inspection_id}"))?;
            inspection
                .sample_size
                .max(1)
                .min(inspection.lot_size.max(1))
        };
        let request = v1::RecordInspectionResultRequest {
            inspection_id: inspection_id.clone(),
            inspector: "QA inspector (sim)".to_owned(),
            sample_inspected: sample,
            defects: Vec::new(),
        };
        let mut client = quality.clone();
        match client.record_inspection_result(request).await {
            Ok(_) => {
                bump(&self.stats.inspections_recorded);
                Ok(())
            }
            // Recorded already (a second opening announcement).
            Err(status) if status.code() == Code::FailedPrecondition => {
                tracing::debug!(%inspection_id, %status, "inspection already recorded");
                Ok(())
            }
            Err(status) => Err(anyhow!("recording inspection {inspection_id}: {status}")),
        }
    }

    // ---- warehouse ----

    /// The warehouse packs exactly what the packing list says.
    async fn pack(&self, order_id: String) -> anyhow::Result<()> {
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
    async fn ship(&self, order_id: String) -> anyhow::Result<()> {
        self.pause_on(&order_id, 1.0).await;
        let shipped = v1::WmsShipped {
            order_id: order_id.clone(),
            bill_of_lading: format!("BL-{}", prefix(&order_id).to_ascii_uppercase()),
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

    /// Tracking at departure and half-way, then delivery after the transit.
    async fn carry(&self, order_id: String) -> anyhow::Result<()> {
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
        let tracking = |status: &str, location: &str| v1::CarrierTracking {
            order_id: order_id.clone(),
            booking_reference: booking.reference.clone(),
            status: status.to_owned(),
            location: location.to_owned(),
            at: Some(timestamp_from(self.now(&order_id))),
        };
        self.publish(
            CARRIER_TRACKING,
            "carrier:sim",
            &order_id,
            &tracking("departed", origin),
        )
        .await?;
        bump(&self.stats.tracking_updates);
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

    // ---- customer ----

    /// The customer's receiving department accepts the goods a day after
    /// delivery.
    async fn accept(&self, order_id: String) -> anyhow::Result<()> {
        self.pause_on(&order_id, 1.0).await;
        let customer = self.customer_of(&order_id).await?;
        let orders = self.clients.orders.clone();
        let request = v1::AcceptOrderRequest {
            order_id: order_id.clone(),
            accepted_by: format!("receiving dept, {customer}"),
            note: "goods received complete and in good order".to_owned(),
        };
        // The order reaches acceptance once the saga has seen the delivery.
        retry(&[Code::FailedPrecondition, Code::NotFound], || {
            let mut orders = orders.clone();
            let request = request.clone();
            async move { orders.accept_order(request).await }
        })
        .await
        .context("accepting the order")?;
        bump(&self.stats.accepted);
        Ok(())
    }

    /// The customer agrees to the factory's proposed delivery date.
    async fn decide(&self, decision: v1::Decision) -> anyhow::Result<()> {
        self.pause_on(&decision.order_id, 0.5).await;
        let customer = self.customer_of(&decision.order_id).await?;
        let answer = if decision
            .options
            .iter()
            .any(|o| o == gendan_saga::workflow::answers::ACCEPT_PROPOSED_DATE)
        {
            gendan_saga::workflow::answers::ACCEPT_PROPOSED_DATE.to_owned()
        } else {
            decision.options.first().cloned().unwrap_or_default()
        };
        let request = v1::DecideRequest {
            order_id: decision.order_id.clone(),
            decision_id: decision.decision_id.clone(),
            answer,
            operator: format!("customer:{customer}"),
            comment: "agreed by e-mail".to_owned(),
        };
        let mut saga = self.clients.saga.clone();
        match saga.decide(request).await {
            Ok(_) => {
                bump(&self.stats.decisions_answered);
                Ok(())
            }
            // Answered meanwhile (an operator, the demo): fine.
            Err(status) if status.code() == Code::FailedPrecondition => Ok(()),
            Err(status) => Err(anyhow!(
                "answering decision {}: {status}",
                decision.decision_id
            )),
        }
    }

    // ---- bank ----

    /// The customer pays the invoice in full: a deposit after two days, a
    /// balance after five.
    async fn pay(&self, invoice: v1::InvoiceIssued) -> anyhow::Result<()> {
        let days = if invoice.kind == "deposit" { 2.0 } else { 5.0 };
        self.pause_on(&invoice.order_id, days).await;
        let finance = self.clients.finance.clone();
        let request = v1::RecordPaymentRequest {
            order_id: invoice.order_id.clone(),
            amount_minor: invoice.amount_minor,
            currency: invoice.currency.clone(),
            received_on: gendan_proto::date_to_string(Utc::now().date_naive()),
            reference: format!("TT-{}", invoice.invoice_id),
            idempotency_key: format!("sim-{}", invoice.invoice_id),
        };
        retry(&[Code::NotFound], || {
            let mut finance = finance.clone();
            let request = request.clone();
            async move { finance.record_payment(request).await }
        })
        .await
        .with_context(|| format!("paying invoice {}", invoice.invoice_id))?;
        bump(&self.stats.payments);
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

fn booking_of(event: &v1::ShipmentBooked) -> Booking {
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
