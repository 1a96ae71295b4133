//! The fuzz program: random and mutated bytes into everything gendan reads
//! from outside, on stable Rust.
//!
//! Three targets, each case chosen by a seeded generator so a failure is
//! reproducible from `--seed` and the case number:
//! - **envelopes**: the bytes of a message as a consumer receives them go
//!   through [`gendan_messaging::decode_envelope`] (what every consumer does
//!   first);
//! - **the saga's core**: an envelope of every event type the workflow
//!   reacts to, with a random or mutated payload, goes into
//!   [`Engine::react`] on an in-memory saga that keeps its state from case
//!   to case (started afresh every few hundred), so later cases meet later
//!   phases;
//! - **request validators**: bytes decoded as each gRPC request (or
//!   command) that has a validator are checked by it; a refusal must be a
//!   field error that names its field (`invalid <field>: <problem>`).
//!
//! Payloads are made three ways: pure random bytes, a valid sample with
//! bytes flipped, inserted, dropped or cut, and protobuf wire records with
//! random field numbers and values (which decode, so the code behind the
//! decoder sees them). Every case runs under `catch_unwind`; a panic is
//! counted and its input printed. Exits 1 on any panic.
//!
//! ```sh
//! cargo run --release -p gendan-tests --bin fuzz -- --cases 1000000
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use gendan_messaging::{Cause, Incoming, Outgoing};
use gendan_proto::v1;
use gendan_saga::engine::Engine;
use gendan_saga::state::SagaState;
use gendan_saga::workflow::{Timing, Workflow};
use prost::Message;

/// A small, fast, seeded generator (xorshift64*): reproducible cases
/// without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Text a field could plausibly hold, or could plausibly break on.
    fn text(&mut self) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "",
            " ",
            "2026-03-02",
            "2026-02-30",
            "9999-12-31",
            "0000-01-01",
            "USD",
            "CNY",
            "usd",
            "shirt",
            "SEA-FRI-1",
            "01a24453-885e-77e5-858d-cac29b690c34",
            "not-a-uuid",
            "30% deposit, 70% against B/L copy",
            "net 30",
            "FOB",
            "lost",
            "damaged",
            "-1",
            "18446744073709551616",
            "\u{0}",
            "\u{202e}",
            "线路",
        ];
        match self.below(4) {
            0 => self.bytes(40),
            1 => "x".repeat(self.below(3000)).into_bytes(),
            _ => WORDS[self.below(WORDS.len())].as_bytes().to_vec(),
        }
    }

    fn varint(&mut self) -> u64 {
        match self.below(5) {
            0 => 0,
            1 => self.below(10) as u64,
            2 => u64::MAX - self.below(3) as u64,
            3 => (self.below(3) as u64 + 1) << 31,
            _ => self.next(),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Protobuf wire records with random field numbers (1..=20) and values:
/// most decode as any message, with fields set to odd values.
fn wire_records(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(8) {
        let field = 1 + rng.below(20) as u64;
        match rng.below(4) {
            0 => {
                put_varint(&mut out, field << 3);
                let value = rng.varint();
                put_varint(&mut out, value);
            }
            1 => {
                put_varint(&mut out, (field << 3) | 2);
                // A nested message half the time, else text.
                let inner = if rng.below(2) == 0 {
                    wire_records(rng)
                } else {
                    rng.text()
                };
                put_varint(&mut out, inner.len() as u64);
                out.extend(inner);
            }
            2 => {
                put_varint(&mut out, (field << 3) | 1);
                out.extend(rng.next().to_le_bytes());
            }
            _ => {
                put_varint(&mut out, (field << 3) | 5);
                out.extend((rng.next() as u32).to_le_bytes());
            }
        }
    }
    out
}

/// `sample` with a few bytes flipped, inserted, removed, or cut short.
fn mutate(rng: &mut Rng, sample: &[u8]) -> Vec<u8> {
    let mut out = sample.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(4) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 => out.insert(at, rng.next() as u8),
            2 if at < out.len() => {
                out.remove(at);
            }
            _ => out.truncate(at),
        }
    }
    out
}

/// Payload bytes made one of the three ways.
fn payload(rng: &mut Rng, samples: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(3) {
        0 => rng.bytes(64),
        1 if !samples.is_empty() => {
            let sample = rng.below(samples.len());
            mutate(rng, &samples[sample])
        }
        _ => wire_records(rng),
    }
}

fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default()
}

/// A refusal must name what is wrong: `invalid <field>: <problem>`.
fn named(result: Result<(), String>) -> Result<(), String> {
    match result {
        Ok(()) => Ok(()),
        Err(text) if text.starts_with("invalid ") && text.contains(": ") => Ok(()),
        Err(text) => Err(format!("a refusal that names no field: {text:?}")),
    }
}

/// What became of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The bytes did not decode: refused at the door.
    Undecodable,
    Accepted,
    Refused,
}

/// Decodes `bytes` as `M` and, when it decodes, checks it with `check`.
fn validate<M: Message + Default>(
    bytes: &[u8],
    check: impl FnOnce(&M) -> Result<(), String>,
) -> Result<Outcome, String> {
    let Ok(message) = M::decode(bytes) else {
        return Ok(Outcome::Undecodable);
    };
    match check(&message) {
        Ok(()) => Ok(Outcome::Accepted),
        refused => named(refused).map(|()| Outcome::Refused),
    }
}

fn text_of<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<(), String> {
    result.map(|_| ()).map_err(|err| err.to_string())
}

/// One case of the validators target: which validator is `which`.
fn validator_case(which: usize, bytes: &[u8]) -> Result<Outcome, String> {
    use gendan_finance::validate as finance;
    use gendan_orders::validate as orders;
    match which {
        0 => validate(bytes, |r: &v1::CreateOrderRequest| {
            text_of(orders::new_order(r, today()))
        }),
        1 => validate(bytes, |r: &v1::AmendOrderRequest| {
            text_of(gendan_orders::amendments::validate::request(r, today()))
        }),
        2 => validate(bytes, |r: &v1::RaiseClaimRequest| {
            text_of(gendan_orders::claims::validate::request(r))
        }),
        3 => validate(bytes, |r: &v1::AcceptOrderRequest| {
            text_of(orders::acceptance(r))
        }),
        4 => validate(bytes, |r: &v1::RecordPaymentRequest| {
            text_of(finance::payment(r, today()))
        }),
        5 => validate(bytes, |r: &v1::RecordRefundRequest| {
            text_of(finance::refund(r, today()))
        }),
        6 => validate(bytes, |r: &v1::IssueCreditNote| {
            text_of(finance::credit_note(&r.order_id, r))
        }),
        7 => validate(bytes, |r: &v1::LabourRate| text_of(finance::labour_rate(r))),
        8 => validate(bytes, |r: &v1::PackingSpec| {
            text_of(gendan_logistics::validate::packing_spec(r))
        }),
        9 => validate(bytes, |r: &v1::CarrierLane| {
            text_of(gendan_logistics::validate::carrier_lane(r))
        }),
        10 => validate(bytes, |r: &v1::ProductMaster| {
            text_of(gendan_logistics::validate::product_master(r))
        }),
        11 => validate(bytes, |r: &v1::Supplier| {
            text_of(gendan_procurement::validate::supplier(r))
        }),
        12 => validate(bytes, |r: &v1::SupplierOffer| {
            text_of(gendan_procurement::validate::offer(r))
        }),
        13 => validate(bytes, |r: &v1::BillOfMaterials| {
            text_of(gendan_procurement::validate::bill_of_materials(r))
        }),
        14 => validate(bytes, |r: &v1::WorkCentre| {
            text_of(gendan_production::validate::work_centre(r))
        }),
        15 => validate(bytes, |r: &v1::Routing| {
            text_of(gendan_production::validate::routing(r))
        }),
        16 => validate(bytes, |r: &v1::InspectionPlan| {
            text_of(gendan_quality::validate::product_plan(r))
        }),
        17 => validate(bytes, |r: &v1::RecordInspectionResultRequest| {
            text_of(gendan_quality::validate::findings(r))
        }),
        18 => validate(bytes, |r: &v1::CloseNonconformanceRequest| {
            text_of(gendan_quality::validate::closing(r))
        }),
        _ => validate(bytes, |r: &v1::Customer| {
            text_of(gendan_orders::customers::validate::customer(r))
        }),
    }
}

const VALIDATORS: usize = 20;

/// A valid encoded request per validator, for mutations.
fn validator_samples() -> Vec<Vec<Vec<u8>>> {
    let order = gendan::sim::sample_order(7, "fuzz", 0);
    let mut samples = vec![Vec::new(); VALIDATORS];
    samples[0].push(order.encode_to_vec());
    samples[1].push(
        v1::AmendOrderRequest {
            order_id: "01a24453-885e-77e5-858d-cac29b690c34".into(),
            client_request_id: "amend-1".into(),
            lines: order.lines.clone(),
            reason: "more".into(),
            requested_by: "buyer".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    samples[19].push(
        v1::Customer {
            customer_id: "NORDWIND".into(),
            name: "Nordwind GmbH".into(),
            country: "DE".into(),
            currency: "USD".into(),
            payment_terms: "30% T/T deposit, 70% against B/L copy".into(),
            incoterm: "FOB".into(),
            major_aql: Some(2.5),
            dunning_reminder_days: vec![1, 7, 14],
            ..Default::default()
        }
        .encode_to_vec(),
    );
    samples[4].push(
        v1::RecordPaymentRequest {
            order_id: "01a24453-885e-77e5-858d-cac29b690c34".into(),
            amount_minor: 100_000,
            currency: "USD".into(),
            received_on: "2026-03-01".into(),
            reference: "TT-1".into(),
            idempotency_key: "pay-1".into(),
        }
        .encode_to_vec(),
    );
    samples
}

/// The saga target: a started saga and the event types it reacts to.
struct SagaTarget {
    engine: Engine,
    saga: SagaState,
    types: Vec<&'static str>,
    order: v1::Order,
}

impl SagaTarget {
    fn new() -> Self {
        let clock = Arc::new(gendan_saga::ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
                .single()
                .unwrap_or_default(),
        ));
        let engine = Engine::new(Workflow::standard(Timing::default()), clock);
        let mut types: Vec<&'static str> = engine
            .workflow()
            .steps()
            .flat_map(|(_, step)| step.completes_on.iter().chain(step.fails_on.iter()))
            .copied()
            .collect();
        types.sort_unstable();
        types.dedup();
        let request = gendan::sim::sample_order(7, "fuzz", 1);
        let order = v1::Order {
            order_id: "01a24453-885e-77e5-858d-cac29b690c34".into(),
            customer: request.customer,
            requested_delivery_date: request.requested_delivery_date,
            lines: request.lines,
            currency: request.currency,
            payment_terms: request.payment_terms,
            incoterm: request.incoterm,
            export: request.export,
            total_minor: 1_000_000,
            ..Default::default()
        };
        let saga = begin(&engine, &order);
        SagaTarget {
            engine,
            saga,
            types,
            order,
        }
    }

    fn case(&mut self, rng: &mut Rng, case: u64) -> Result<Outcome, String> {
        if case.is_multiple_of(500) {
            self.saga = begin(&self.engine, &self.order);
        }
        let event_type = self.types[rng.below(self.types.len())];
        let envelope = v1::Envelope {
            event_id: format!("fuzz-{case}"),
            r#type: event_type.to_owned(),
            order_id: self.order.order_id.clone(),
            schema_version: gendan_messaging::SCHEMA_VERSION,
            payload: payload(rng, &[]),
            ..Default::default()
        };
        let incoming = Incoming {
            subject: "gendan.evt.fuzz".into(),
            envelope,
            traceparent: None,
            delivered: 1,
            stream_sequence: case,
        };
        let now = Utc
            .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .single()
            .unwrap_or_default()
            + chrono::Duration::minutes(case as i64 % 100_000);
        // A refusal (a payload that does not decode, an answer out of
        // place) is an answer; only a panic is a failure.
        let reacted = self.engine.react(&mut self.saga, &incoming, now);
        self.saga.outgoing.clear();
        self.saga.timer_changes.clear();
        Ok(if reacted.is_ok() {
            Outcome::Accepted
        } else {
            Outcome::Refused
        })
    }
}

fn begin(engine: &Engine, order: &v1::Order) -> SagaState {
    let created = Outgoing::event(
        "orders",
        &order.order_id,
        &v1::OrderCreated {
            order: Some(order.clone()),
        },
        &Cause::root(&order.order_id),
    );
    let incoming = Incoming {
        subject: created.subject.clone(),
        envelope: created.envelope,
        traceparent: None,
        delivered: 1,
        stream_sequence: 1,
    };
    let now = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .unwrap_or_default();
    match engine.begin(order.clone(), &incoming, now) {
        Ok(saga) => saga,
        Err(err) => panic!("the sample order does not start a saga: {err}"),
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let cases = arg("--cases", 100_000);
    let seed = arg("--seed", 2026);
    // Panics are counted and reported here, not printed by the hook.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let envelope_sample = Outgoing::event(
        "orders",
        "o-1",
        &v1::OrderConfirmed::default(),
        &Cause::root("o-1"),
    )
    .envelope
    .encode_to_vec();
    let validators = validator_samples();
    let mut saga = SagaTarget::new();
    let mut counts = [0u64; 3];
    // Per target: undecodable, accepted, refused.
    let mut outcomes = [[0u64; 3]; 3];
    let mut panics = 0u64;
    for case in 0..cases {
        let mut rng = Rng::new(seed ^ case.wrapping_mul(0x1000_0000_01B3));
        let target = rng.below(3);
        counts[target] += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| match target {
            0 => {
                let bytes = payload(&mut rng, std::slice::from_ref(&envelope_sample));
                Ok(match gendan_messaging::decode_envelope(&bytes) {
                    Ok(_) => Outcome::Accepted,
                    Err(_) => Outcome::Refused,
                })
            }
            1 => saga.case(&mut rng, case),
            _ => {
                let which = rng.below(VALIDATORS);
                let bytes = payload(&mut rng, &validators[which]);
                validator_case(which, &bytes)
            }
        }));
        match outcome {
            Ok(Ok(outcome)) => outcomes[target][outcome as usize] += 1,
            Ok(Err(problem)) => {
                panics += 1;
                eprintln!("case {case} (seed {seed}, target {target}): {problem}");
            }
            Err(panic) => {
                panics += 1;
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                eprintln!("case {case} (seed {seed}, target {target}) panicked: {text}");
                if target == 1 {
                    // The saga's state may be half-changed: start afresh.
                    saga = SagaTarget::new();
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{cases} cases in {elapsed:.1} s ({:.0}/s); {panics} failures",
        cases as f64 / elapsed.max(1e-9)
    );
    let names = ["envelopes", "saga events", "requests"];
    for (target, name) in names.iter().enumerate() {
        let [undecodable, accepted, refused] = outcomes[target];
        println!(
            "  {name:<12} {:>9} cases: {undecodable} undecodable, {accepted} accepted, \
             {refused} refused with a reason",
            counts[target]
        );
    }
    if panics > 0 {
        std::process::exit(1);
    }
}
