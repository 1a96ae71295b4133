//! End to end: all seven services as separate applications over real NATS
//! and PostgreSQL, the simulators playing the MES, suppliers, QA, the
//! warehouse, the carrier, the customer and the bank. Orders go from
//! received to closed and archived.

use std::time::Duration;

use gendan::demo::{create_orders, ports_of};
use gendan::sim::{self, Clients, SimOptions};
use gendan_messaging::{Bus, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::{self, Phase};
use gendan_tests::world::{WAIT, World, start_saga, wait_closed, world_on};
use gendan_tests::{SubjectReader, eventually};

/// Every service, the catalogue, and the simulators at full speed.
async fn world() -> World {
    world_with(false).await
}

/// The same, with the simulators playing the seeded exception mix.
async fn world_with(exceptions: bool) -> World {
    world_settling_claims_by(exceptions, gendan_saga::workflow::answers::CREDIT_NOTE).await
}

/// The same, the merchandiser settling claims by `answer`.
async fn world_settling_claims_by(exceptions: bool, answer: &'static str) -> World {
    world_of(exceptions, answer, false).await
}

/// The same; the carrier loses the first shipment when
/// `lose_first_shipment`.
async fn world_of(exceptions: bool, answer: &'static str, lose_first_shipment: bool) -> World {
    let options = SimOptions {
        day: Duration::ZERO,
        seed: 7,
        exceptions,
        settle_claims_by: answer,
        lose_first_shipment,
        ..Default::default()
    };
    world_on(options, None).await
}

/// The order's timeline once the whole story is on it: the timeline
/// records events as they arrive, and the coordinator's own completion lands
/// just after the order closes.
async fn whole_timeline(clients: &Clients, order_id: &str) -> Vec<v1::TimelineEntry> {
    eventually(WAIT, "the whole story on the timeline", || {
        let mut orders = clients.orders.clone();
        let order_id = order_id.to_owned();
        async move {
            let entries = orders
                .get_timeline(v1::GetTimelineRequest { order_id })
                .await
                .ok()?
                .into_inner()
                .entries;
            let told = entries
                .iter()
                .any(|e| e.r#type == v1::SagaCompleted::TYPE_NAME);
            told.then_some(entries)
        }
    })
    .await
    .unwrap()
}

/// How many times each step of the order's saga ran.
async fn step_runs(clients: &Clients, order_id: &str) -> std::collections::BTreeMap<String, u32> {
    let view = clients
        .saga
        .clone()
        .get_saga(v1::GetSagaRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    view.steps.into_iter().map(|s| (s.step, s.runs)).collect()
}

fn phase_targets(timeline: &[v1::TimelineEntry]) -> Vec<String> {
    timeline
        .iter()
        .filter(|e| e.r#type == v1::PhaseChanged::TYPE_NAME)
        .map(|e| {
            e.summary
                .split('→')
                .nth(1)
                .unwrap_or_default()
                .trim()
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn domestic_and_export_orders_go_from_received_to_closed_in_one_trace() {
    let world = world().await;
    let mut domestic = None;
    let mut export = None;
    for index in 0..10 {
        let request = sim::sample_order(11, "flow", index);
        let requested = gendan_proto::date_from_str(&request.requested_delivery_date).unwrap();
        // Dates the factory can make, so no clarification is needed here.
        if requested < chrono::Utc::now().date_naive() + chrono::Duration::days(30) {
            continue;
        }
        if request.export && export.is_none() {
            export = Some(request);
        } else if !request.export && domestic.is_none() {
            domestic = Some(request);
        }
    }
    let (domestic, export) = (
        domestic.expect("a domestic sample"),
        export.expect("an export sample"),
    );

    // The export order's create call carries the caller's trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(export);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    let export_id = world
        .clients
        .orders
        .clone()
        .create_order(request)
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
        .order_id;
    let domestic_id = world
        .clients
        .orders
        .clone()
        .create_order(domestic)
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
        .order_id;

    for order_id in [&export_id, &domestic_id] {
        let closed = wait_closed(&world.clients, order_id).await;
        assert_eq!(closed.phase, Phase::Closed as i32);
        let timeline = whole_timeline(&world.clients, order_id).await;
        // Every phase, in order.
        assert_eq!(
            phase_targets(&timeline),
            vec![
                "review",
                "confirmed",
                "materials",
                "production",
                "final_inspection",
                "packing",
                "documents",
                "shipping",
                "acceptance",
                "settlement",
                "closed"
            ],
            "{order_id}"
        );
        let has = |name: &str| timeline.iter().any(|e| e.r#type == name);
        for milestone in [
            v1::MaterialsReady::TYPE_NAME,
            v1::WorkOrderCompleted::TYPE_NAME,
            v1::FinalInspectionPassed::TYPE_NAME,
            v1::PackingChecked::TYPE_NAME,
            v1::DocumentsReady::TYPE_NAME,
            v1::Shipped::TYPE_NAME,
            v1::Delivered::TYPE_NAME,
            v1::OrderAccepted::TYPE_NAME,
            v1::OrderPaidInFull::TYPE_NAME,
            v1::OrderClosed::TYPE_NAME,
        ] {
            assert!(
                has(milestone),
                "{milestone} missing from the timeline of {order_id}"
            );
        }
        let summary = world
            .clients
            .orders
            .clone()
            .get_summary(v1::GetSummaryRequest {
                order_id: order_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!summary.delivered_on.is_empty());
        assert!(summary.on_time, "{summary:?}");
        assert!((summary.first_pass_yield - 1.0).abs() < 1e-9, "{summary:?}");
        assert!(summary.cost_actual_minor > 0, "{summary:?}");

        // The order's calendar, planned at confirmation, with what happened.
        let calendar = world
            .clients
            .orders
            .clone()
            .get_milestones(v1::GetMilestonesRequest {
                order_id: order_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(calendar.version > 0, "{calendar:?}");
        let milestone = |key: &str| {
            calendar
                .milestones
                .iter()
                .find(|m| m.key == key)
                .unwrap_or_else(|| panic!("no {key} in the calendar of {order_id}: {calendar:?}"))
        };
        for key in [
            "confirmed",
            "materials_in",
            "final_inspection",
            "packing_done",
            "ex_factory",
            "delivered",
        ] {
            let m = milestone(key);
            assert!(!m.planned.is_empty(), "{key} unplanned: {m:?}");
            assert!(!m.actual.is_empty(), "{key} has no actual: {m:?}");
        }
        assert!(
            calendar
                .milestones
                .iter()
                .any(|m| m.key.starts_with("stage_done:") && !m.actual.is_empty()),
            "{calendar:?}"
        );
        assert_eq!(
            calendar
                .milestones
                .iter()
                .any(|m| m.key == "documents_ready"),
            *order_id == export_id,
            "documents are a milestone of export orders only"
        );
        // The tracking list shows a closed order waiting on nothing.
        let closed = world
            .clients
            .orders
            .clone()
            .get_order(v1::GetOrderRequest {
                order_id: order_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                closed.next_milestone.as_str(),
                closed.next_milestone_date.as_str()
            ),
            ("", ""),
            "{closed:?}"
        );

        // Closed means read-only: acceptance can no longer be recorded.
        let refused = world
            .clients
            .orders
            .clone()
            .accept_order(v1::AcceptOrderRequest {
                order_id: order_id.clone(),
                accepted_by: "x".into(),
                note: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    }

    // The export order's documents were generated and checked.
    let documents = world
        .clients
        .logistics
        .clone()
        .get_documents(v1::GetDocumentsRequest {
            order_id: export_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(documents.documents.len() >= 5, "{documents:?}");

    // One trace: the gRPC call's trace id on every timeline entry of the
    // export order that gendan's services wrote, and on every event header.
    let timeline = whole_timeline(&world.clients, &export_id).await;
    let saga_entries: Vec<_> = timeline.iter().filter(|e| e.source == "saga").collect();
    assert!(!saga_entries.is_empty());
    for entry in saga_entries {
        assert_eq!(
            entry.trace_id, trace_id,
            "{} {}",
            entry.r#type, entry.summary
        );
    }
    let mut saga = v1::saga_service_client::SagaServiceClient::connect(format!(
        "http://127.0.0.1:{}",
        world.saga.port("saga")
    ))
    .await
    .unwrap();
    let view = saga
        .get_saga(v1::GetSagaRequest {
            order_id: export_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.status, "completed");
    for step in view.steps.iter().filter(|s| s.status == "done") {
        assert_eq!(step.trace_id, trace_id, "saga step {}", step.step);
    }
    let mut events = SubjectReader::open(&world.nats.url, streams::EVENTS, "gendan.evt.saga.>")
        .await
        .unwrap();
    let mut seen = 0;
    while let Some(event) = events.next(Duration::from_millis(500)).await.unwrap() {
        if event.envelope().unwrap().order_id == export_id {
            let traceparent = event.header("traceparent").expect("traceparent header");
            assert_eq!(
                gendan_telemetry::trace_id_of(&traceparent),
                Some(trace_id),
                "{}",
                event.subject
            );
            seen += 1;
        }
    }
    assert!(seen >= 11, "only {seen} saga events for the order");
    world.stop().await;
}

#[tokio::test]
async fn a_saga_coordinator_killed_mid_flow_resumes_and_the_order_closes() {
    let mut world = world().await;
    let created = create_orders(&world.clients, 23, 3, 3).await.unwrap();
    let order_ids: Vec<String> = created.into_iter().map(|(id, _)| id).collect();
    // Let the workflows get going, then pull the plug on the coordinator.
    eventually(WAIT, "orders past review", || {
        let clients = world.clients.clone();
        let ids = order_ids.clone();
        async move {
            let orders = gendan::demo::fetch(&clients, &ids).await.ok()?;
            orders
                .iter()
                .all(|o| o.phase >= Phase::Confirmed as i32)
                .then_some(())
        }
    })
    .await
    .unwrap();
    world.saga.abort().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A new coordinator on the same database takes over.
    world.saga = start_saga(&world.db, &world.nats).await;
    world.clients = {
        let mut ports = ports_of(&world.services);
        ports.saga = world.saga.port("saga");
        Clients::connect(&ports).await.unwrap()
    };
    for order_id in &order_ids {
        let closed = wait_closed(&world.clients, order_id).await;
        assert_eq!(closed.phase, Phase::Closed as i32);
        let timeline = whole_timeline(&world.clients, order_id).await;
        let count = |name: &str| timeline.iter().filter(|e| e.r#type == name).count();
        // Nothing was done twice.
        assert_eq!(count(v1::WorkOrderCompleted::TYPE_NAME), 1);
        assert_eq!(count(v1::OrderPaidInFull::TYPE_NAME), 1);
        assert_eq!(count(v1::SagaCompleted::TYPE_NAME), 1);
    }
    world.stop().await;
}

#[tokio::test]
async fn a_cancelled_order_is_compensated_in_every_department() {
    let world = world().await;
    let created = create_orders(&world.clients, 31, 1, 1).await.unwrap();
    let order_id = created[0].0.clone();
    let mut saga = world.clients.saga.clone();
    eventually(WAIT, "production planned", || {
        let mut saga = saga.clone();
        let order_id = order_id.clone();
        async move {
            let view = saga
                .get_saga(v1::GetSagaRequest { order_id })
                .await
                .ok()?
                .into_inner();
            let planned = view
                .steps
                .iter()
                .any(|s| s.step == "plan_production" && s.status == "done");
            let receivable = view
                .steps
                .iter()
                .any(|s| s.step == "open_receivable" && s.status == "done");
            (planned && receivable && view.phase < Phase::Shipping as i32).then_some(())
        }
    })
    .await
    .unwrap();
    saga.cancel_order(v1::CancelOrderRequest {
        order_id: order_id.clone(),
        operator: "li.wei".into(),
        reason: "customer withdrew the order".into(),
    })
    .await
    .unwrap();

    let view = eventually(WAIT, "compensations done", || {
        let mut saga = saga.clone();
        let order_id = order_id.clone();
        async move {
            let view = saga
                .get_saga(v1::GetSagaRequest { order_id })
                .await
                .ok()?
                .into_inner();
            (!view.compensations.is_empty()
                && view.compensations.iter().all(|c| c.status == "done"))
            .then_some(view)
        }
    })
    .await
    .unwrap();
    assert_eq!(view.status, "cancelled");
    let undone: Vec<&str> = view.compensations.iter().map(|c| c.step.as_str()).collect();
    assert!(
        undone.contains(&"plan_production")
            && undone.contains(&"open_receivable")
            && undone.contains(&"capacity_check"),
        "{undone:?}"
    );

    let work_order = world
        .clients
        .production
        .clone()
        .get_work_order(v1::GetWorkOrderRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(work_order.status, "cancelled");
    let order = eventually(WAIT, "order cancelled", || {
        let mut orders = world.clients.orders.clone();
        let order_id = order_id.clone();
        async move {
            let order = orders
                .get_order(v1::GetOrderRequest { order_id })
                .await
                .ok()?
                .into_inner();
            (order.workflow_status == "cancelled").then_some(order)
        }
    })
    .await
    .unwrap();
    assert_eq!(order.phase, Phase::Cancelled as i32);
    world.stop().await;
}

/// The seeded mix: the first order to reach final inspection fails twice
/// (reworked once, then the customer grants a concession), the second fails
/// once (reworked and passed). Both close; production reworked, finance
/// booked the rework, and each summary shows its register.
#[tokio::test]
async fn the_exception_mix_reworks_decides_and_amends_end_to_end() {
    let world = world_with(true).await;
    let created = create_orders(&world.clients, 41, 2, 2).await.unwrap();
    for (order_id, _) in &created {
        wait_closed(&world.clients, order_id).await;
    }
    let mut saga = world.clients.saga.clone();
    let mut failures_by_order = Vec::new();
    for (order_id, _) in &created {
        let register = saga
            .list_exceptions(v1::ListExceptionsRequest {
                order_id: order_id.clone(),
                kind: v1::ExceptionKind::FinalInspectionFailed as i32,
                state: v1::ExceptionState::Any as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .exceptions;
        assert!(
            register.iter().all(|e| e.closed_at.is_some()),
            "{register:#?}"
        );
        failures_by_order.push((order_id.clone(), register));
    }
    failures_by_order.sort_by_key(|(_, register)| std::cmp::Reverse(register.len()));
    let (twice, register) = &failures_by_order[0];
    assert_eq!(register.len(), 2, "{register:#?}");
    assert_eq!(register[0].decision, "concession");
    assert!(register[0].decided_by.starts_with("customer:"));
    let (once, register) = &failures_by_order[1];
    assert_eq!(register.len(), 1, "{register:#?}");
    assert!(register[0].decision.is_empty(), "reworked without a person");

    for (order_id, failures) in [(twice, 2u32), (once, 1)] {
        let view = saga
            .get_saga(v1::GetSagaRequest {
                order_id: order_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let inspection = view
            .steps
            .iter()
            .find(|s| s.step == "request_final_inspection")
            .unwrap();
        assert_eq!(inspection.runs, failures.min(1) + 1, "inspections asked");
        let ledger = world
            .clients
            .finance
            .clone()
            .get_cost_ledger(v1::GetCostLedgerRequest {
                order_id: order_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            ledger.entries.iter().any(|e| e.category == "rework"),
            "rework booked for {order_id}: {:#?}",
            ledger.entries
        );
        let summary = world
            .clients
            .orders
            .clone()
            .get_summary(v1::GetSummaryRequest {
                order_id: order_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let tally = summary
            .exceptions_by_kind
            .iter()
            .find(|t| t.kind == "final inspection failed")
            .unwrap_or_else(|| panic!("{:#?}", summary.exceptions_by_kind));
        assert_eq!(tally.count, failures);
        if failures == 2 {
            assert!(
                summary.decisions.iter().any(|d| d.contains("concession")),
                "{:#?}",
                summary.decisions
            );
        }
    }

    // The customer amended the first order to reach materials: it was
    // reviewed and confirmed again, production and the receivable followed
    // the amended order, and the summary lists the amendment.
    let mut amended = Vec::new();
    for (order_id, _) in &created {
        let amendments = world
            .clients
            .orders
            .clone()
            .list_amendments(v1::ListAmendmentsRequest {
                order_id: order_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .amendments;
        if !amendments.is_empty() {
            amended.push((order_id.clone(), amendments));
        }
    }
    assert_eq!(amended.len(), 1, "one order amended: {amended:#?}");
    let (order_id, amendments) = &amended[0];
    assert_eq!(amendments.len(), 1, "{amendments:#?}");
    let amendment = &amendments[0];
    assert!(amendment.total_after_minor > amendment.total_before_minor);
    let register = saga
        .list_exceptions(v1::ListExceptionsRequest {
            order_id: order_id.clone(),
            kind: v1::ExceptionKind::Amendment as i32,
            state: v1::ExceptionState::Any as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .exceptions;
    assert_eq!(register.len(), 1, "{register:#?}");
    assert!(register[0].closed_at.is_some(), "{register:#?}");
    let runs = step_runs(&world.clients, order_id).await;
    let runs = |name: &str| runs[name];
    assert_eq!(runs("confirm_order"), 2, "confirmed again");
    assert_eq!(runs("plan_production"), 2, "the amendment's production run");
    let receivable = world
        .clients
        .finance
        .clone()
        .get_receivable(v1::GetReceivableRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        receivable.total_minor,
        amendment.total_after_minor,
        "open_receivable ran {} times: {receivable:#?}",
        runs("open_receivable")
    );
    assert_eq!(receivable.status, "paid", "{receivable:#?}");
    let summary = world
        .clients
        .orders
        .clone()
        .get_summary(v1::GetSummaryRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        summary
            .amendments
            .iter()
            .any(|line| line.starts_with("amendment 1")),
        "{:#?}",
        summary.amendments
    );
    world.stop().await;
}

#[tokio::test]
async fn a_claim_settled_by_replacement_is_made_shipped_and_delivered_again_end_to_end() {
    let world = world_settling_claims_by(true, gendan_saga::workflow::answers::REPLACEMENT).await;
    let created = create_orders(&world.clients, 43, 2, 2).await.unwrap();
    for (order_id, _) in &created {
        wait_closed(&world.clients, order_id).await;
    }
    let mut claimed = Vec::new();
    for (order_id, _) in &created {
        let claims = world
            .clients
            .orders
            .clone()
            .list_claims(v1::ListClaimsRequest {
                order_id: order_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .claims;
        if !claims.is_empty() {
            claimed.push((order_id.clone(), claims));
        }
    }
    assert_eq!(claimed.len(), 1, "one order claimed: {claimed:#?}");
    let (order_id, claims) = &claimed[0];
    assert_eq!(
        claims[0].resolution(),
        v1::ClaimResolution::Replacement,
        "{claims:#?}"
    );
    let view = step_runs(&world.clients, order_id).await;
    let runs = |name: &str| view[name];
    // Made again, shipped again, delivered again, then the claim resolved.
    assert!(runs("plan_production") >= 2, "{view:#?}");
    assert_eq!(runs("book_shipment"), 2, "{view:#?}");
    assert_eq!(runs("delivered"), 2, "{view:#?}");
    assert_eq!(runs("resolve_redelivery"), 1, "{view:#?}");
    let timeline = whole_timeline(&world.clients, order_id).await;
    let deliveries = timeline
        .iter()
        .filter(|e| e.r#type == v1::Delivered::TYPE_NAME)
        .count();
    assert_eq!(deliveries, 2, "the goods and their replacement delivered");
    world.stop().await;
}

#[tokio::test]
async fn cargo_the_carrier_lost_is_replaced_by_a_new_shipment_end_to_end() {
    let world = world_of(false, gendan_saga::workflow::answers::REPLACEMENT, true).await;
    let created = create_orders(&world.clients, 44, 1, 1).await.unwrap();
    let order_id = &created[0].0;
    wait_closed(&world.clients, order_id).await;
    let view = step_runs(&world.clients, order_id).await;
    let runs = |name: &str| view[name];
    // Made again, shipped under a new booking, delivered once; nothing to
    // resolve with orders.
    assert!(runs("plan_production") >= 2, "{view:#?}");
    assert_eq!(runs("book_shipment"), 2, "{view:#?}");
    assert_eq!(runs("resolve_redelivery"), 0, "{view:#?}");
    let exceptions = world
        .clients
        .saga
        .clone()
        .list_exceptions(v1::ListExceptionsRequest {
            order_id: order_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .exceptions;
    let cargo: Vec<&v1::OrderException> = exceptions
        .iter()
        .filter(|e| e.kind() == v1::ExceptionKind::CargoClaim)
        .collect();
    assert_eq!(cargo.len(), 1, "{exceptions:#?}");
    assert_eq!(cargo[0].decision, "replacement", "{:#?}", cargo[0]);
    assert!(cargo[0].closed_at.is_some(), "{:#?}", cargo[0]);
    let timeline = whole_timeline(&world.clients, order_id).await;
    let count = |type_name: &str| timeline.iter().filter(|e| e.r#type == type_name).count();
    assert_eq!(count(v1::CargoClaimOpened::TYPE_NAME), 1);
    assert_eq!(
        count(v1::Delivered::TYPE_NAME),
        1,
        "only the replacement arrived"
    );
    assert_eq!(count(v1::OrderAccepted::TYPE_NAME), 1);
    let notices = world
        .clients
        .orders
        .clone()
        .list_notices(v1::ListNoticesRequest {
            order_id: order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .notices;
    assert!(
        notices
            .iter()
            .any(|n| n.kind == "cargo_claim" && n.body.contains("as a replacement")),
        "{notices:#?}"
    );
    world.stop().await;
}

/// Every message of `stream` (sequence, subject, envelope), read directly.
async fn stream_envelopes(bus: &Bus, stream: &str) -> Vec<(String, v1::Envelope)> {
    use prost::Message as _;
    let mut handle = bus.jetstream().get_stream(stream).await.unwrap();
    let state = handle.info().await.unwrap().state.clone();
    let mut all = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        // Sequences purged or deleted leave gaps.
        let Ok(message) = handle.get_raw_message(sequence).await else {
            continue;
        };
        if let Ok(envelope) = v1::Envelope::decode(message.payload.as_ref()) {
            all.push((message.subject.to_string(), envelope));
        }
    }
    all
}

/// Waits until every durable consumer of `stream` has handled everything.
async fn drained(bus: &Bus, stream: &str) {
    use futures::StreamExt;
    eventually(
        WAIT,
        &format!("the consumers of {stream} drained"),
        || async move {
            let handle = bus.jetstream().get_stream(stream).await.ok()?;
            let infos: Vec<_> = handle.consumers().collect().await;
            let mut durable = 0;
            for info in infos {
                let info = info.ok()?;
                if info.config.durable_name.is_none() {
                    continue;
                }
                durable += 1;
                if info.num_pending > 0 || info.num_ack_pending > 0 {
                    return None;
                }
            }
            (durable > 0).then_some(())
        },
    )
    .await
    .unwrap();
}

/// Event ids of `orders`' events, per event type.
fn facts_of(
    events: &[(String, v1::Envelope)],
    orders: &[String],
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut facts: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for (_, envelope) in events {
        if orders.contains(&envelope.order_id) {
            facts
                .entry(envelope.r#type.clone())
                .or_default()
                .insert(envelope.event_id.clone());
        }
    }
    facts
}

#[tokio::test]
async fn every_command_sent_again_after_the_orders_closed_has_no_second_effect() {
    let mut world = world_with(true).await;
    let created = create_orders(&world.clients, 45, 3, 3).await.unwrap();
    let orders: Vec<String> = created.into_iter().map(|(id, _)| id).collect();
    for order_id in &orders {
        wait_closed(&world.clients, order_id).await;
    }
    // The outside world is quiet from here: only gendan answers.
    let stats = world.simulator.take().unwrap().stop().await.unwrap();
    assert_eq!(stats.errors, 0, "{stats:?}");
    drained(&world.bus, streams::EVENTS).await;
    let before = facts_of(
        &stream_envelopes(&world.bus, streams::EVENTS).await,
        &orders,
    );

    // Every command the saga sent for these orders, again, as a new
    // message (a fresh event id): what a re-send after a timeout is.
    let commands = stream_envelopes(&world.bus, streams::COMMANDS).await;
    let mut resent = 0;
    for (subject, envelope) in commands {
        if !orders.contains(&envelope.order_id) {
            continue;
        }
        let mut again = gendan_messaging::Outgoing {
            subject,
            envelope,
            traceparent: None,
        };
        again.envelope.event_id = uuid::Uuid::now_v7().to_string();
        world.bus.publish(&again).await.unwrap();
        resent += 1;
    }
    assert!(resent >= 10 * orders.len(), "only {resent} commands");
    drained(&world.bus, streams::COMMANDS).await;
    drained(&world.bus, streams::EVENTS).await;
    let after = facts_of(
        &stream_envelopes(&world.bus, streams::EVENTS).await,
        &orders,
    );

    // Checks that store nothing answer anew (a new observation); every
    // other answer is a fact announced again under its own id, or nothing.
    let observations = [
        v1::MaterialsChecked::TYPE_NAME,
        v1::CapacityChecked::TYPE_NAME,
        v1::FreightQuoted::TYPE_NAME,
        v1::InspectionEstimated::TYPE_NAME,
    ];
    let mut new_facts = Vec::new();
    for (event_type, ids) in &after {
        if observations.contains(&event_type.as_str()) {
            continue;
        }
        let known = before.get(event_type).cloned().unwrap_or_default();
        let added = ids.difference(&known).count();
        if added > 0 {
            new_facts.push(format!("{event_type}: {added} new"));
        }
    }
    assert!(
        new_facts.is_empty(),
        "{resent} commands sent again made new facts: {new_facts:#?}"
    );
    for order_id in &orders {
        let order = wait_closed(&world.clients, order_id).await;
        assert_eq!(order.phase, Phase::Closed as i32);
    }
    world.stop().await;
}

/// The saga's view of `step` of `order_id`.
async fn saga_step(clients: &Clients, order_id: &str, step: &str) -> Option<v1::SagaStep> {
    clients
        .saga
        .clone()
        .get_saga(v1::GetSagaRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .ok()?
        .into_inner()
        .steps
        .into_iter()
        .find(|s| s.step == step)
}

#[tokio::test]
async fn an_overdue_delivery_asks_logistics_again_and_shows_where_the_goods_are() {
    let clock = gendan_saga::ManualClock::new(chrono::Utc::now());
    let options = SimOptions {
        day: Duration::ZERO,
        seed: 7,
        carrier_silent: true,
        ..Default::default()
    };
    let world = world_on(options, Some(std::sync::Arc::new(clock.clone()))).await;
    let created = create_orders(&world.clients, 47, 1, 1).await.unwrap();
    let order_id = created[0].0.clone();
    eventually(WAIT, "the saga waits for the delivery", || {
        let clients = world.clients.clone();
        let order_id = order_id.clone();
        async move {
            let step = saga_step(&clients, &order_id, "delivered").await?;
            (step.status == "waiting").then_some(())
        }
    })
    .await
    .unwrap();
    // The projected date passes with no delivery report: the saga asks
    // logistics again, which says where the goods are.
    clock.advance(chrono::Duration::days(400));
    let cause = eventually(WAIT, "the step shows logistics' answer", || {
        let clients = world.clients.clone();
        let order_id = order_id.clone();
        async move {
            let step = saga_step(&clients, &order_id, "delivered").await?;
            let cause = step.last_error;
            cause
                .contains("the carrier has not reported it delivered")
                .then_some(cause)
        }
    })
    .await
    .unwrap();
    assert!(cause.starts_with("logistics: shipped on "), "{cause}");
    // And the order's timeline says it.
    eventually(WAIT, "the status on the timeline", || {
        let mut orders = world.clients.orders.clone();
        let order_id = order_id.clone();
        async move {
            let entries = orders
                .get_timeline(v1::GetTimelineRequest { order_id })
                .await
                .ok()?
                .into_inner()
                .entries;
            entries
                .iter()
                .any(|e| {
                    e.r#type == v1::StatusReported::TYPE_NAME
                        && e.summary.contains("Asked again about delivered")
                })
                .then_some(())
        }
    })
    .await
    .unwrap();
    world.stop().await;
}
