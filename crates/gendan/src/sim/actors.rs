//! The actors of the outside world and the dispatch of gendan's events to
//! them. Every reaction runs in its own task, waits its simulated time, then
//! answers over gRPC or publishes an external event, as the real party would.
//!
//! This module holds the shared [`World`] (clocks, counters, clients) and
//! the routing of each event to its actor; the actors live in
//! [`shop_floor`] (MES, QA), [`logistics`] (warehouse, carrier) and
//! [`partners`] (supplier, customer, bank).

mod logistics;
mod partners;
mod shop_floor;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use chrono::Utc;
use gendan_messaging::{Bus, Cause, Outgoing};
use gendan_proto::TypeName;
use gendan_proto::v1::{self, Envelope, Phase};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Code;

use super::rng::Lcg;
use super::{Clients, SimOptions, SimStats};
use logistics::booking_of;
use partners::Payment;
use shop_floor::MesStage;

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
    /// Which final inspections find defects.
    mix: super::mix::Mix,
    bookings: Mutex<HashMap<String, Booking>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Simulated days since `epoch`, per order: each reaction happens a
    /// number of days after the event it answers, so an order's clock
    /// follows its critical path, whatever the real processing takes.
    clocks: Mutex<HashMap<String, f64>>,
    epoch: chrono::DateTime<Utc>,
    /// The balance invoice the late payer holds until reminded.
    held: Mutex<Option<HeldPayment>>,
}

/// An invoice the simulated customer pays only when reminded of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPayment {
    pub order_id: String,
    pub invoice_id: String,
    pub due_date: chrono::NaiveDate,
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

/// Retries a gRPC call while it fails transiently or with one of `codes`
/// (the other service has not caught up yet), as long as a real partner
/// would keep trying (see [`crate::retry`]).
async fn retry<T, F, Fut>(codes: &[Code], call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    crate::retry::transient(codes, crate::retry::PARTNER_ATTEMPTS, call).await
}

impl World {
    pub(crate) fn new(
        bus: Bus,
        clients: Clients,
        options: SimOptions,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        let mix = super::mix::Mix::new(options.exceptions, options.seed);
        World {
            bus,
            clients,
            options,
            stats: Counters::default(),
            started: Mutex::new(HashSet::new()),
            mix,
            bookings: Mutex::new(HashMap::new()),
            cancel,
            tracker,
            clocks: Mutex::new(HashMap::new()),
            epoch: Utc::now(),
            held: Mutex::new(None),
        }
    }

    pub(crate) fn held_payment(&self) -> Option<HeldPayment> {
        self.held.lock().ok().and_then(|held| held.clone())
    }

    /// Whether the customer holds `invoice` until reminded: the exception
    /// mix's late payer, played only where the calendar can be moved to the
    /// reminder (otherwise it would wait for real days).
    fn holds(&self, invoice: &v1::InvoiceIssued) -> bool {
        if self.options.calendar.is_none()
            || invoice.invoice_kind() != v1::InvoiceKind::Balance
            || !self.mix.pays_when_reminded(&invoice.invoice_id)
        {
            return false;
        }
        let Some(due_date) = gendan_proto::date_from_str(&invoice.due_date) else {
            return false;
        };
        if let Ok(mut held) = self.held.lock() {
            *held = Some(HeldPayment {
                order_id: invoice.order_id.clone(),
                invoice_id: invoice.invoice_id.clone(),
                due_date,
            });
        }
        true
    }

    /// Today on the services' business calendar.
    fn today(&self) -> chrono::NaiveDate {
        match &self.options.calendar {
            Some(calendar) => gendan_runtime::clock::Clock::today(calendar),
            None => Utc::now().date_naive(),
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

    /// Whether `key` was seen by [`first`](Self::first).
    fn seen(&self, key: &str) -> bool {
        self.started
            .lock()
            .map(|started| started.contains(key))
            .unwrap_or(false)
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
            if event.to == Phase::Materials as i32
                && self.mix.amends(&event.order_id)
                && self.first(format!("amend:{}", event.order_id))
            {
                let world = self.clone();
                let id = event.order_id.clone();
                self.react("customer", order_id.clone(), async move {
                    world.amend(id).await
                });
            }
            if event.to == Phase::Production as i32 && self.first(format!("mes:{}", event.order_id))
            {
                let world = self.clone();
                self.react(
                    "mes",
                    order_id,
                    async move { world.mes(event.order_id).await },
                );
            }
        } else if is::<v1::ReworkPlanned>(envelope) {
            // A rework comes with its plan; the same shop floor works it.
            let event: v1::ReworkPlanned = decode(envelope)?;
            if self.first(format!("rework:{}:{}", event.order_id, event.revision)) {
                let world = self.clone();
                let stages: Vec<MesStage> = event.stages.iter().map(MesStage::from).collect();
                self.react("mes", order_id, async move {
                    world.report_stages(event.order_id, stages).await
                });
            }
        } else if is::<v1::WorkOrderPlanned>(envelope) {
            // The first run starts when the order enters production (above),
            // and so does a run an amendment planned before that; a remake
            // after scrap is worked as soon as it is planned.
            let event: v1::WorkOrderPlanned = decode(envelope)?;
            if event.revision >= 2
                && self.seen(&format!("mes:{}", event.order_id))
                && self.first(format!("remake:{}:{}", event.order_id, event.revision))
            {
                let world = self.clone();
                let stages: Vec<MesStage> = event.stages.iter().map(MesStage::from).collect();
                self.react("mes", order_id, async move {
                    world.report_stages(event.order_id, stages).await
                });
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
                let fails = self
                    .mix
                    .final_inspection_fails(&event.order_id, event.revision);
                self.react("qa", order_id, async move {
                    world
                        .inspect_final(event.inspection_id, event.sample_size, fails)
                        .await
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
            if self.first(format!("pack:{}:{}", event.order_id, event.revision)) {
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
            // A redelivery (a claim's goods made good) is a new booking.
            if self.first(format!("ship:{}:{}", event.order_id, event.revision)) {
                let world = self.clone();
                self.react("wms", order_id, async move {
                    world.ship(event.order_id, event.revision).await
                });
            }
        } else if is::<v1::Shipped>(envelope) {
            let event: v1::Shipped = decode(envelope)?;
            if self.first(format!("carry:{}:{}", event.order_id, event.revision)) {
                let world = self.clone();
                // Only a first shipment can be the one lost (a replacement
                // arrives).
                let loses = event.revision <= 1
                    && self.options.lose_first_shipment
                    && self.first("lose-shipment".to_owned());
                self.react("carrier", order_id, async move {
                    world.carry(event.order_id, loses).await
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
            let customer_answers = matches!(
                decision.decision_kind(),
                v1::DecisionKind::DeliveryDate
                    | v1::DecisionKind::FinalInspection
                    | v1::DecisionKind::ClaimResolution
                    | v1::DecisionKind::CargoClaim
                    | v1::DecisionKind::Margin
            );
            if !event.reminder
                && customer_answers
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
            if !self.holds(&event) && self.first(format!("pay:{}", event.invoice_id)) {
                let days = if event.kind == "deposit" { 2.0 } else { 5.0 };
                let payment = Payment::of_invoice(&event);
                let world = self.clone();
                self.react(
                    "bank",
                    order_id,
                    async move { world.pay(payment, days).await },
                );
            }
        } else if is::<v1::PaymentReminder>(envelope) {
            // Only the late payer waits for reminders; the others paid.
            let event: v1::PaymentReminder = decode(envelope)?;
            let held = self
                .held_payment()
                .is_some_and(|held| held.invoice_id == event.invoice_id);
            if held && self.first(format!("pay:{}", event.invoice_id)) {
                let payment = Payment::of_reminder(&event);
                let world = self.clone();
                self.react(
                    "bank",
                    order_id,
                    async move { world.pay(payment, 1.0).await },
                );
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
        // A real MES or WMS keeps what it could not send and sends it again
        // once the bus is back; the same message id makes a repeat harmless.
        crate::retry::persistently(crate::retry::PARTNER_ATTEMPTS, || {
            self.bus.publish(&message)
        })
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
}
