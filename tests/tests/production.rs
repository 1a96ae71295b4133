//! The production service against real NATS and PostgreSQL: gRPC catalogue
//! and capacity checks, saga commands in and events out (work order
//! revisions, reworks, cancelling, a completion restated), MES progress to
//! completion, and dead letters for MES events about unknown orders,
//! reworks of nothing and restatements of facts production does not hold.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use gendan_messaging::{Bus, Cause, Outgoing, streams, subjects};
use gendan_production::Application;
use gendan_proto::TypeName;
use gendan_proto::v1::production_service_client::ProductionServiceClient;
use gendan_proto::v1::{
    CancelWorkOrder, CapacityChecked, CapacityReleased, CheckCapacityRequest, CheckOrderCapacity,
    Envelope, EquipmentStatusChanged, GetRoutingRequest, GetWorkOrderRequest,
    ListWorkCentresRequest, MesEquipmentDown, MesQuantityReported, MesStageCompleted,
    MesStageStarted, PlanWorkOrder, ProductQuantity, ReleaseCapacity, RestateFact, ReworkCompleted,
    ReworkPlanned, Routing, RoutingStage, StartRework, StatusReported, WorkCentre,
    WorkOrderCancelled, WorkOrderCompleted, WorkOrderPlanned, WorkOrderPlanningFailed,
    WorkOrderProgressed,
};
use gendan_settings::{Common, Secret, ServiceSettings};
use gendan_tests::{TestDb, TestNats, eventually};
use prost::Message as _;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A Monday: plans below are easy to check by hand from it.
const MONDAY: &str = "2026-03-02";
const WAIT: Duration = Duration::from_secs(15);

struct Production {
    _nats: TestNats,
    _db: TestDb,
    bus: Bus,
    pool: PgPool,
    client: ProductionServiceClient<Channel>,
    cancel: CancellationToken,
    task: JoinHandle<gendan_production::Result<()>>,
}

impl Production {
    async fn start() -> anyhow::Result<Self> {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await?;
        let db = TestDb::create().await?;
        let settings = ServiceSettings {
            common: Common {
                database_url: Secret::new(db.url.clone()),
                nats_url: nats.url.clone(),
                stream_replicas: 1,
                db_max_connections: 5,
                ..Default::default()
            },
            grpc_addr: "127.0.0.1:0".to_owned(),
            schema: "production".to_owned(),
        };
        let app = Application::build(settings).await?;
        let port = app.port();
        let pool = app.pool().clone();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        let client = ProductionServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
        let bus = Bus::connect(&nats.url, "test").await?;
        Ok(Production {
            _nats: nats,
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

    /// Two work centres, 8 hours Monday to Friday, and a two-stage shirt:
    /// cutting 0.5 h/unit + 2 h set-up, sewing 1 h/unit.
    async fn seed(&mut self) -> anyhow::Result<()> {
        for code in ["CUT", "SEW"] {
            self.client
                .upsert_work_centre(WorkCentre {
                    code: code.to_owned(),
                    name: format!("{code} room"),
                    hours_per_day: 8.0,
                    ..WorkCentre::default()
                })
                .await?;
        }
        self.client
            .set_routing(Routing {
                product: "shirt".to_owned(),
                stages: vec![
                    stage("cutting", "CUT", 0.5, 2.0),
                    stage("sewing", "SEW", 1.0, 0.0),
                ],
            })
            .await?;
        Ok(())
    }

    /// Publishes a message; returns its message id.
    async fn send<M: prost::Message + TypeName>(
        &self,
        subject: String,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<String> {
        let message = Outgoing::new(subject, "test", order_id, payload, &Cause::root(order_id));
        self.bus.publish(&message).await?;
        Ok(message.event_id().to_owned())
    }

    /// Sends a command again on purpose and waits until production has handled
    /// it: its answer is the same fact under the same event id, so nothing
    /// new reaches the bus.
    async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        gendan_tests::repeat_command(&self.bus, &self.pool, "production", order_id, payload).await
    }

    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<String> {
        let subject = subjects::command("production", &subjects::token_for_type(M::TYPE_NAME));
        self.send(subject, order_id, payload).await
    }

    async fn mes<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let token = subjects::token_for_type(M::TYPE_NAME);
        let name = token.trim_start_matches("mes_");
        self.send(subjects::mes(name), order_id, payload).await?;
        Ok(())
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or(-1)
    }

    /// Capacity hours booked across all work centres and days.
    async fn booked_hours(&self) -> anyhow::Result<f64> {
        let hours: f64 =
            sqlx::query_scalar("SELECT coalesce(sum(hours), 0)::float8 FROM capacity_bookings")
                .fetch_one(&self.pool)
                .await?;
        Ok(hours)
    }

    async fn current_work_order_id(&mut self, order_id: &str) -> anyhow::Result<String> {
        let work_order = self
            .client
            .get_work_order(GetWorkOrderRequest {
                order_id: order_id.into(),
            })
            .await?
            .into_inner();
        Ok(work_order.work_order_id)
    }
}

fn stage(name: &str, work_centre: &str, hours_per_unit: f64, setup_hours: f64) -> RoutingStage {
    RoutingStage {
        stage: name.to_owned(),
        work_centre: work_centre.to_owned(),
        hours_per_unit,
        setup_hours,
    }
}

fn shirts(quantity: u32) -> Vec<ProductQuantity> {
    vec![ProductQuantity {
        product: "shirt".to_owned(),
        quantity,
    }]
}

/// Reads messages of one subject filter from a stream, oldest first.
struct Reader {
    messages: pull::Stream,
}

impl Reader {
    async fn open(bus: &Bus, stream: &str, filter: &str) -> anyhow::Result<Self> {
        let stream = bus.jetstream().get_stream(stream).await?;
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: filter.to_owned(),
                ack_policy: AckPolicy::None,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await?;
        Ok(Reader {
            messages: consumer.messages().await?,
        })
    }

    async fn next_message(&mut self, wait: Duration) -> Option<async_nats::jetstream::Message> {
        match tokio::time::timeout(wait, self.messages.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            _ => None,
        }
    }

    async fn next(&mut self, wait: Duration) -> Option<Envelope> {
        let message = self.next_message(wait).await?;
        Envelope::decode(message.payload.as_ref()).ok()
    }

    /// The next envelope of type `M`, skipping others.
    async fn until<M: prost::Message + TypeName + Default>(
        &mut self,
    ) -> anyhow::Result<(Envelope, M)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Some(envelope) = self.next(deadline - tokio::time::Instant::now()).await {
            if envelope.r#type == M::TYPE_NAME {
                let payload = M::decode(envelope.payload.as_slice())?;
                return Ok((envelope, payload));
            }
        }
        anyhow::bail!("no {} event arrived", M::TYPE_NAME)
    }

    /// The next dead letter: the reason header and the original envelope.
    async fn dead_letter(&mut self) -> anyhow::Result<(String, Envelope)> {
        let message = self
            .next_message(WAIT)
            .await
            .ok_or_else(|| anyhow::anyhow!("nothing dead-lettered"))?;
        let reason = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Gendan-Dlq-Reason"))
            .map(|value| value.as_str().to_owned())
            .unwrap_or_default();
        Ok((reason, Envelope::decode(message.payload.as_ref())?))
    }

    /// Everything left, once nothing new arrives for a moment.
    async fn drain(&mut self) -> Vec<Envelope> {
        let mut rest = Vec::new();
        while let Some(envelope) = self.next(Duration::from_millis(700)).await {
            rest.push(envelope);
        }
        rest
    }
}

#[tokio::test]
async fn routing_and_capacity_check_over_grpc() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;

    let centres = production
        .client
        .list_work_centres(ListWorkCentresRequest {})
        .await?
        .into_inner()
        .work_centres;
    assert_eq!(
        centres.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(),
        ["CUT", "SEW"]
    );

    let routing = production
        .client
        .get_routing(GetRoutingRequest {
            product: "shirt".into(),
        })
        .await?
        .into_inner();
    assert_eq!(routing.stages.len(), 2);
    assert_eq!(routing.stages[1].stage, "sewing");

    // 12 shirts: cutting 0.5 * 12 + 2 = 8 h (Monday), sewing 12 h from
    // Monday (the day cutting ends): Monday 8 h, Tuesday 4 h.
    let check = production
        .client
        .check_capacity(CheckCapacityRequest {
            items: shirts(12),
            earliest_start: MONDAY.into(),
        })
        .await?
        .into_inner();
    assert_eq!(check.earliest_completion, "2026-03-03");
    assert_eq!(check.stages.len(), 2);
    assert_eq!(
        (
            check.stages[0].planned_start.as_str(),
            check.stages[0].planned_end.as_str()
        ),
        ("2026-03-02", "2026-03-02")
    );
    assert_eq!(check.stages[1].hours, 12.0);
    assert_eq!(check.stages[1].planned_end, "2026-03-03");

    let unknown = production
        .client
        .check_capacity(CheckCapacityRequest {
            items: vec![ProductQuantity {
                product: "kimono".into(),
                quantity: 1,
            }],
            earliest_start: MONDAY.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown.message().contains("kimono"),
        "{}",
        unknown.message()
    );

    let bad_date = production
        .client
        .check_capacity(CheckCapacityRequest {
            items: shirts(1),
            earliest_start: "next monday".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_date.code(), tonic::Code::InvalidArgument);
    assert!(
        bad_date.message().contains("earliest_start"),
        "{}",
        bad_date.message()
    );

    let zero = production
        .client
        .check_capacity(CheckCapacityRequest {
            items: shirts(0),
            earliest_start: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(zero.code(), tonic::Code::InvalidArgument);
    assert!(
        zero.message().contains("items[0].quantity"),
        "{}",
        zero.message()
    );

    production.stop().await
}

#[tokio::test]
async fn invalid_routing_is_refused_with_the_field_and_nothing_stored() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;

    let status = production
        .client
        .set_routing(Routing {
            product: "jacket".into(),
            stages: vec![
                stage("cutting", "CUT", 0.5, 0.0),
                stage("sewing", "WELD", 1.0, 0.0),
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("stages[1].work_centre"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("WELD"), "{}", status.message());

    let status = production
        .client
        .set_routing(Routing {
            product: "jacket".into(),
            stages: vec![stage("cutting", "CUT", -0.5, 0.0)],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("stages[0].hours_per_unit"),
        "{}",
        status.message()
    );

    let missing = production
        .client
        .get_routing(GetRoutingRequest {
            product: "jacket".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert_eq!(
        production
            .count("SELECT count(*) FROM routings WHERE product = 'jacket'")
            .await,
        0
    );

    // A bad replacement leaves the stored routing as it was.
    let status = production
        .client
        .set_routing(Routing {
            product: "shirt".into(),
            stages: vec![
                stage("cutting", "CUT", 1.0, 0.0),
                stage("cutting", "SEW", 1.0, 0.0),
            ],
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("stages[1].stage"),
        "{}",
        status.message()
    );
    assert_eq!(
        production
            .count("SELECT count(*) FROM routing_stages WHERE product = 'shirt'")
            .await,
        2
    );

    production.stop().await
}

#[tokio::test]
async fn capacity_check_command_answers_feasibility() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;

    production
        .command(
            "o-feasible",
            &CheckOrderCapacity {
                order_id: "o-feasible".into(),
                items: shirts(12),
                requested_delivery_date: "2099-12-31".into(),
                earliest_start: String::new(),
                revision: 0,
            },
        )
        .await?;
    let (envelope, answer) = events.until::<CapacityChecked>().await?;
    assert_eq!(envelope.order_id, "o-feasible");
    assert!(answer.feasible, "{answer:?}");
    assert!(!answer.earliest_completion.is_empty());
    assert!(answer.problem.is_empty());
    // The stages as scheduled, in routing order, the last one ending on
    // the earliest completion.
    let stages: Vec<&str> = answer.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(stages, ["cutting", "sewing"]);
    assert_eq!(
        answer.stages.last().map(|s| s.planned_end.as_str()),
        Some(answer.earliest_completion.as_str())
    );
    assert_eq!(answer.planned_start, answer.stages[0].planned_start);

    production
        .command(
            "o-kimono",
            &CheckOrderCapacity {
                order_id: "o-kimono".into(),
                items: vec![ProductQuantity {
                    product: "kimono".into(),
                    quantity: 3,
                }],
                requested_delivery_date: "2099-12-31".into(),
                earliest_start: String::new(),
                revision: 0,
            },
        )
        .await?;
    let (_, answer) = events.until::<CapacityChecked>().await?;
    assert_eq!(answer.order_id, "o-kimono");
    assert!(!answer.feasible);
    assert!(answer.problem.contains("kimono"), "{}", answer.problem);

    // Too early a date: 12 shirts take two days, yesterday cannot work.
    production
        .command(
            "o-late",
            &CheckOrderCapacity {
                order_id: "o-late".into(),
                items: shirts(12),
                requested_delivery_date: "2020-01-01".into(),
                earliest_start: String::new(),
                revision: 0,
            },
        )
        .await?;
    let (_, answer) = events.until::<CapacityChecked>().await?;
    assert!(!answer.feasible && answer.problem.is_empty(), "{answer:?}");

    production.stop().await
}

#[tokio::test]
async fn plan_work_order_is_planned_once_even_when_sent_twice() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;

    let command = PlanWorkOrder {
        amendment: 0,
        order_id: "o-1".into(),
        items: shirts(12),
        earliest_start: MONDAY.into(),
        revision: 1,
    };
    production.command("o-1", &command).await?;
    let (envelope, first) = events.until::<WorkOrderPlanned>().await?;
    assert_eq!(envelope.order_id, "o-1");
    assert_eq!(envelope.source, "production");
    assert_eq!(
        (first.planned_start.as_str(), first.planned_end.as_str()),
        ("2026-03-02", "2026-03-03")
    );
    assert_eq!(first.stages.len(), 2);

    // The saga re-sends (a new message id): the same plan is the same fact
    // (one event id, nothing new on the bus), nothing booked twice.
    assert_eq!(
        envelope.event_id,
        gendan_messaging::fact_id(
            "production",
            WorkOrderPlanned::TYPE_NAME,
            "o-1",
            &format!("work_order:{}", first.work_order_id)
        )
        .to_string()
    );
    production.repeat("o-1", &command).await?;
    assert_eq!(
        production.count("SELECT count(*) FROM work_orders").await,
        1
    );
    let booked: f64 = sqlx::query_scalar("SELECT sum(hours)::float8 FROM capacity_bookings")
        .fetch_one(&production.pool)
        .await?;
    assert!((booked - 20.0).abs() < 1e-9, "booked {booked} hours");

    // A second order gets the capacity that is left: cutting cannot start
    // before Tuesday, sewing waits for SEW's free Tuesday afternoon.
    production
        .command(
            "o-2",
            &PlanWorkOrder {
                amendment: 0,
                order_id: "o-2".into(),
                items: shirts(4),
                earliest_start: MONDAY.into(),
                revision: 1,
            },
        )
        .await?;
    let (_, other) = events.until::<WorkOrderPlanned>().await?;
    assert_eq!(other.order_id, "o-2");
    assert_eq!(other.stages[0].planned_start, "2026-03-03");
    assert_eq!(other.planned_end, "2026-03-03");

    let work_order = production
        .client
        .get_work_order(GetWorkOrderRequest {
            order_id: "o-1".into(),
        })
        .await?
        .into_inner();
    assert_eq!(work_order.work_order_id, first.work_order_id);
    assert_eq!(work_order.status, "planned");
    assert_eq!(work_order.progress, 0.0);
    assert!(
        work_order
            .stages
            .iter()
            .all(|s| s.status == "planned" && s.actual_start.is_empty())
    );

    let missing = production
        .client
        .get_work_order(GetWorkOrderRequest {
            order_id: "o-404".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    production.stop().await
}

#[tokio::test]
async fn mes_reports_drive_the_work_order_to_completion() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;
    let order = "o-mes";
    production
        .command(
            order,
            &PlanWorkOrder {
                amendment: 0,
                order_id: order.into(),
                items: shirts(12),
                earliest_start: MONDAY.into(),
                revision: 1,
            },
        )
        .await?;
    let (_, planned) = events.until::<WorkOrderPlanned>().await?;

    let at = |day: &str| {
        let date = gendan_proto::date_from_str(day).unwrap();
        Some(gendan_proto::timestamp_from(
            date.and_hms_opt(10, 0, 0).unwrap().and_utc(),
        ))
    };
    let started = |stage: &str| MesStageStarted {
        order_id: order.into(),
        product: "shirt".into(),
        stage: stage.into(),
        at: at("2026-03-02"),
    };
    let reported = |stage: &str, good, scrap, day: &str| MesQuantityReported {
        order_id: order.into(),
        product: "shirt".into(),
        stage: stage.into(),
        good,
        scrap,
        at: at(day),
    };
    let completed = |stage: &str, day: &str| MesStageCompleted {
        order_id: order.into(),
        product: "shirt".into(),
        stage: stage.into(),
        at: at(day),
    };

    production.mes(order, &started("cutting")).await?;
    production
        .mes(order, &reported("cutting", 12, 0, "2026-03-02"))
        .await?;
    let (_, progressed) = events.until::<WorkOrderProgressed>().await?;
    assert_eq!(
        (progressed.stage.as_str(), progressed.good_quantity),
        ("cutting", 12)
    );
    assert_eq!(progressed.progress, 0.0);
    assert_eq!(progressed.projected_end, "2026-03-03");

    production
        .mes(order, &completed("cutting", "2026-03-02"))
        .await?;
    events.until::<WorkOrderProgressed>().await?;

    // Sewing is late: on Thursday only 6 of 12 are done, 6 hours are left.
    production
        .mes(order, &reported("sewing", 6, 1, "2026-03-05"))
        .await?;
    let (_, late) = events.until::<WorkOrderProgressed>().await?;
    assert!((late.progress - 0.5).abs() < 1e-9, "{late:?}");
    assert_eq!(late.projected_end, "2026-03-05");
    // Each stage with its own projection: cutting ended on Monday, sewing
    // is projected where the work order is.
    let stage_ends: Vec<(&str, &str, &str)> = late
        .stages
        .iter()
        .map(|s| {
            (
                s.stage.as_str(),
                s.status.as_str(),
                s.projected_end.as_str(),
            )
        })
        .collect();
    assert_eq!(
        stage_ends,
        [
            ("cutting", "completed", "2026-03-02"),
            ("sewing", "running", "2026-03-05")
        ]
    );

    production
        .mes(order, &reported("sewing", 4, 1, "2026-03-06"))
        .await?;
    production
        .mes(order, &completed("sewing", "2026-03-06"))
        .await?;
    let (envelope, done) = events.until::<WorkOrderCompleted>().await?;
    assert_eq!(envelope.order_id, order);
    assert_eq!(done.work_order_id, planned.work_order_id);
    assert_eq!((done.good_quantity, done.scrap_quantity), (10, 2));
    assert_eq!(done.completed_on, "2026-03-06");
    assert_eq!(done.revision, 1);

    let work_order = production
        .client
        .get_work_order(GetWorkOrderRequest {
            order_id: order.into(),
        })
        .await?
        .into_inner();
    assert_eq!(work_order.status, "completed");
    assert!((work_order.progress - 10.0 / 12.0).abs() < 1e-9);
    let sewing = &work_order.stages[1];
    assert_eq!(
        (sewing.actual_start.as_str(), sewing.actual_end.as_str()),
        ("2026-03-05", "2026-03-06")
    );
    assert_eq!(
        (
            sewing.good_quantity,
            sewing.scrap_quantity,
            sewing.status.as_str()
        ),
        (10, 2, "completed")
    );

    // A repeated completion is harmless: no second completion event.
    production
        .mes(order, &completed("sewing", "2026-03-07"))
        .await?;
    production
        .mes(
            "",
            &MesEquipmentDown {
                work_centre: "SEW".into(),
                reason: "needle bar broken".into(),
                at: at("2026-03-09"),
                expected_hours: 0.0,
            },
        )
        .await?;
    eventually(WAIT, "all MES messages handled", || async {
        let handled = production
            .count("SELECT count(*) FROM inbox WHERE consumer = 'production-mes'")
            .await;
        let pending = production.count("SELECT count(*) FROM outbox").await;
        (handled == 8 && pending == 0).then_some(())
    })
    .await?;
    let rest = events.drain().await;
    let types: Vec<&str> = rest.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(types, [EquipmentStatusChanged::TYPE_NAME], "{types:?}");
    let equipment = EquipmentStatusChanged::decode(rest[0].payload.as_slice())?;
    assert!(equipment.down && equipment.reason == "needle bar broken");
    assert_eq!(
        production
            .count("SELECT count(*) FROM equipment_events")
            .await,
        1
    );

    production.stop().await
}

/// A burst of reports on one order, published as fast as the server takes
/// them, so the consumer's runs carry many of them at once: every report
/// counts once, progress is announced in order, and one refused in the middle is dead-lettered
/// without taking the others with it.
#[tokio::test]
async fn a_burst_of_mes_reports_counts_every_report_once_in_order() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;
    let mut dead = Reader::open(
        &production.bus,
        streams::DEAD_LETTERS,
        &subjects::dead_letter("production-mes"),
    )
    .await?;
    let order = "o-burst";
    production
        .command(
            order,
            &PlanWorkOrder {
                amendment: 0,
                order_id: order.into(),
                items: shirts(40),
                earliest_start: MONDAY.into(),
                revision: 1,
            },
        )
        .await?;
    events.until::<WorkOrderPlanned>().await?;

    let reported = |stage: &str, good| MesQuantityReported {
        order_id: order.into(),
        product: "shirt".into(),
        stage: stage.into(),
        good,
        scrap: 0,
        at: None,
    };
    for _ in 0..10 {
        production.mes(order, &reported("cutting", 2)).await?;
    }
    production.mes(order, &reported("embroidery", 1)).await?;
    for _ in 0..10 {
        production.mes(order, &reported("cutting", 2)).await?;
    }
    production
        .mes(
            order,
            &MesStageCompleted {
                order_id: order.into(),
                product: "shirt".into(),
                stage: "cutting".into(),
                at: None,
            },
        )
        .await?;

    // A stage's progress is announced once a run, with its running totals:
    // as many announcements as runs, each counting more, the last all 40.
    let mut counted = Vec::new();
    while counted.last() != Some(&40) {
        let (_, progressed) = events.until::<WorkOrderProgressed>().await?;
        counted.push(progressed.good_quantity);
    }
    assert!(
        counted.len() <= 21 && counted.windows(2).all(|pair| pair[0] < pair[1]),
        "{counted:?}"
    );
    let (reason, original) = dead.dead_letter().await?;
    assert!(reason.contains("embroidery"), "reason: {reason}");
    assert_eq!(original.r#type, MesQuantityReported::TYPE_NAME);

    let work_order = production
        .client
        .get_work_order(GetWorkOrderRequest {
            order_id: order.into(),
        })
        .await?
        .into_inner();
    let cutting = &work_order.stages[0];
    assert_eq!(
        (cutting.good_quantity, cutting.status.as_str()),
        (40, "completed")
    );
    eventually(WAIT, "the burst handled and announced", || async {
        let handled = production
            .count("SELECT count(*) FROM inbox WHERE consumer = 'production-mes'")
            .await;
        let pending = production.count("SELECT count(*) FROM outbox").await;
        (handled == 21 && pending == 0).then_some(())
    })
    .await?;
    // The completion's own announcement, when it came in a run of its own.
    for rest in events.drain().await {
        assert_eq!(rest.r#type, WorkOrderProgressed::TYPE_NAME);
        let progressed = WorkOrderProgressed::decode(rest.payload.as_slice())?;
        assert_eq!(progressed.good_quantity, 40);
    }

    production.stop().await
}

#[tokio::test]
async fn mes_event_for_an_unknown_order_is_dead_lettered_with_a_reason() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut dead = Reader::open(
        &production.bus,
        streams::DEAD_LETTERS,
        &subjects::dead_letter("production-mes"),
    )
    .await?;

    production
        .mes(
            "o-ghost",
            &MesQuantityReported {
                order_id: "o-ghost".into(),
                product: "shirt".into(),
                stage: "sewing".into(),
                good: 5,
                scrap: 0,
                at: None,
            },
        )
        .await?;
    let (reason, original) = dead.dead_letter().await?;
    assert!(reason.contains("o-ghost"), "reason: {reason}");
    assert_eq!(original.r#type, MesQuantityReported::TYPE_NAME);
    assert_eq!(
        production.count("SELECT count(*) FROM work_orders").await,
        0
    );

    production.stop().await
}

#[tokio::test]
async fn mes_events_without_trace_context_join_the_orders_trace() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;
    let order = "o-traced";
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";

    let mut plan = Outgoing::new(
        subjects::command("production", "plan_work_order"),
        "test",
        order,
        &PlanWorkOrder {
            amendment: 0,
            order_id: order.into(),
            items: shirts(2),
            earliest_start: MONDAY.into(),
            revision: 1,
        },
        &Cause::root(order),
    );
    plan.traceparent = Some(format!("00-{trace_id}-00f067aa0ba902b7-01"));
    production.bus.publish(&plan).await?;
    events.until::<WorkOrderPlanned>().await?;

    // The MES does not trace: no traceparent header at all.
    let mut report = Outgoing::new(
        subjects::mes("quantity_reported"),
        "mes:line-1",
        order,
        &MesQuantityReported {
            order_id: order.into(),
            product: "shirt".into(),
            stage: "cutting".into(),
            good: 2,
            scrap: 0,
            at: None,
        },
        &Cause::root(order),
    );
    report.traceparent = None;
    production.bus.publish(&report).await?;

    let deadline = tokio::time::Instant::now() + WAIT;
    let mut traceparent = None;
    while let Some(message) = events
        .next_message(deadline - tokio::time::Instant::now())
        .await
    {
        let envelope = Envelope::decode(message.payload.as_ref())?;
        if envelope.r#type == WorkOrderProgressed::TYPE_NAME {
            traceparent = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get("traceparent"))
                .map(|value| value.as_str().to_owned());
            break;
        }
    }
    let traceparent =
        traceparent.ok_or_else(|| anyhow::anyhow!("progress event without traceparent"))?;
    assert_eq!(gendan_telemetry::trace_id_of(&traceparent), Some(trace_id));

    production.stop().await
}

#[tokio::test]
async fn cancelling_a_work_order_releases_its_capacity_once_and_impossible_plans_are_answered()
-> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;

    // Planned in the future, so all its capacity is still to come.
    let plan = PlanWorkOrder {
        amendment: 0,
        order_id: "o-9".into(),
        items: shirts(12),
        earliest_start: "2030-03-04".into(),
        revision: 1,
    };
    production.command("o-9", &plan).await?;
    let (_, planned) = events.until::<WorkOrderPlanned>().await?;

    let cancel = CancelWorkOrder {
        order_id: "o-9".into(),
        reason: "customer withdrew".into(),
    };
    production.command("o-9", &cancel).await?;
    let (_, first) = events.until::<WorkOrderCancelled>().await?;
    assert_eq!(first.work_order_id, planned.work_order_id);
    assert!(
        (first.released_hours - 20.0).abs() < 1e-9,
        "released {}",
        first.released_hours
    );
    assert_eq!(
        production
            .count("SELECT count(*) FROM capacity_bookings")
            .await,
        0
    );

    // A re-sent cancel is answered with the same fact (the same event id:
    // nothing new on the bus) and releases nothing more.
    production.repeat("o-9", &cancel).await?;
    assert_eq!(
        production
            .count("SELECT count(*) FROM capacity_bookings")
            .await,
        0
    );
    let work_order = production
        .client
        .get_work_order(GetWorkOrderRequest {
            order_id: "o-9".into(),
        })
        .await?
        .into_inner();
    assert_eq!(work_order.status, "cancelled");

    // Cancelling an order that never got a work order is answered too.
    production
        .command(
            "o-none",
            &CancelWorkOrder {
                order_id: "o-none".into(),
                reason: "x".into(),
            },
        )
        .await?;
    let (_, nothing) = events.until::<WorkOrderCancelled>().await?;
    assert!(nothing.work_order_id.is_empty());
    assert!(nothing.note.contains("no work order"), "{}", nothing.note);

    // A plan that cannot be made is an answer with the reason.
    production
        .command(
            "o-10",
            &PlanWorkOrder {
                amendment: 0,
                order_id: "o-10".into(),
                items: vec![ProductQuantity {
                    product: "no-such-product".into(),
                    quantity: 5,
                }],
                earliest_start: String::new(),
                revision: 1,
            },
        )
        .await?;
    let (_, failed) = events.until::<WorkOrderPlanningFailed>().await?;
    assert!(
        failed.reason.contains("no-such-product"),
        "{}",
        failed.reason
    );
    assert_eq!(
        production
            .count("SELECT count(*) FROM work_orders WHERE order_id = 'o-10'")
            .await,
        0
    );
    production.stop().await
}

#[tokio::test]
async fn a_new_revision_plans_a_second_work_order() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;
    let order = "o-rev";
    let plan = |revision| PlanWorkOrder {
        amendment: 0,
        order_id: order.into(),
        items: shirts(12),
        earliest_start: MONDAY.into(),
        revision,
    };

    // Revision 0 (left out) is the first production run, revision 1.
    production.command(order, &plan(0)).await?;
    let (_, first) = events.until::<WorkOrderPlanned>().await?;
    assert_eq!(first.revision, 1);
    production.repeat(order, &plan(1)).await?;
    assert_eq!(
        production.count("SELECT count(*) FROM work_orders").await,
        1
    );
    assert!((production.booked_hours().await? - 20.0).abs() < 1e-9);

    // A remake after scrap: a second work order. Its material date (March)
    // has passed, so it is planned from today, not on days gone by.
    production.command(order, &plan(2)).await?;
    let (_, remake) = events.until::<WorkOrderPlanned>().await?;
    assert_eq!(remake.revision, 2);
    assert_ne!(remake.work_order_id, first.work_order_id);
    let today = gendan_proto::date_to_string(chrono::Utc::now().date_naive());
    assert!(remake.planned_start >= today, "{remake:?}");
    assert!((production.booked_hours().await? - 40.0).abs() < 1e-9);

    // The remake re-sent: the stored plan again, nothing booked.
    production.repeat(order, &plan(2)).await?;
    assert_eq!(
        production.count("SELECT count(*) FROM work_orders").await,
        2
    );
    assert!((production.booked_hours().await? - 40.0).abs() < 1e-9);

    // The order's work order is now the remake; the first stays on record.
    assert_eq!(
        production.current_work_order_id(order).await?,
        remake.work_order_id
    );
    production.stop().await
}

#[tokio::test]
async fn rework_runs_on_the_last_stage_and_completes_with_its_hours() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;
    let order = "o-rework";
    production
        .command(
            order,
            &PlanWorkOrder {
                amendment: 0,
                order_id: order.into(),
                items: shirts(12),
                earliest_start: MONDAY.into(),
                revision: 1,
            },
        )
        .await?;
    let (_, planned) = events.until::<WorkOrderPlanned>().await?;
    let booked_before = production.booked_hours().await?;

    let rework = StartRework {
        order_id: order.into(),
        revision: 1,
        items: shirts(4),
        nonconformance_id: "nc-1".into(),
        reason: "open seams".into(),
    };
    production.command(order, &rework).await?;
    let (envelope, first) = events.until::<ReworkPlanned>().await?;
    assert_eq!(envelope.order_id, order);
    assert_eq!(first.revision, 1);
    assert_ne!(first.work_order_id, planned.work_order_id);
    // The shirt's last routing stage is sewing at SEW: 4 x 1 h, no set-up.
    assert_eq!(first.stages.len(), 1, "{first:?}");
    let stage = &first.stages[0];
    assert_eq!(
        (
            stage.product.as_str(),
            stage.stage.as_str(),
            stage.work_centre.as_str()
        ),
        ("shirt", "rework", "SEW")
    );
    assert_eq!((stage.quantity, stage.hours), (4, 4.0));
    // Scheduled from today (or the next working day): the goods are here.
    let today = gendan_proto::date_to_string(chrono::Utc::now().date_naive());
    assert!(first.planned_start >= today, "{first:?}");
    assert!((production.booked_hours().await? - booked_before - 4.0).abs() < 1e-9);

    // Re-sent: the same plan from what is stored (the same fact), no second
    // rework.
    production.repeat(order, &rework).await?;
    assert_eq!(
        production
            .count("SELECT count(*) FROM work_orders WHERE kind = 'rework'")
            .await,
        1
    );
    assert!((production.booked_hours().await? - booked_before - 4.0).abs() < 1e-9);

    // The MES reports the rework like any stage.
    let at = |day: &str| {
        let date = gendan_proto::date_from_str(day).unwrap();
        Some(gendan_proto::timestamp_from(
            date.and_hms_opt(10, 0, 0).unwrap().and_utc(),
        ))
    };
    production
        .mes(
            order,
            &MesStageStarted {
                order_id: order.into(),
                product: "shirt".into(),
                stage: "rework".into(),
                at: at("2026-12-14"),
            },
        )
        .await?;
    production
        .mes(
            order,
            &MesQuantityReported {
                order_id: order.into(),
                product: "shirt".into(),
                stage: "rework".into(),
                good: 4,
                scrap: 0,
                at: at("2026-12-14"),
            },
        )
        .await?;
    let (_, progressed) = events.until::<WorkOrderProgressed>().await?;
    assert_eq!(progressed.work_order_id, first.work_order_id);
    assert_eq!(
        (progressed.stage.as_str(), progressed.good_quantity),
        ("rework", 4)
    );
    production
        .mes(
            order,
            &MesStageCompleted {
                order_id: order.into(),
                product: "shirt".into(),
                stage: "rework".into(),
                at: at("2026-12-15"),
            },
        )
        .await?;
    let (envelope, done) = events.until::<ReworkCompleted>().await?;
    assert_eq!(envelope.order_id, order);
    assert_eq!(
        (done.work_order_id.as_str(), done.revision),
        (first.work_order_id.as_str(), 1)
    );
    assert_eq!((done.good_quantity, done.scrap_quantity), (4, 0));
    assert_eq!(done.completed_on, "2026-12-15");
    assert_eq!(
        done.hours_by_work_centre
            .clone()
            .into_iter()
            .collect::<Vec<_>>(),
        [("SEW".to_owned(), 4.0)]
    );
    // A rework is not the production run finishing.
    let rest = events.drain().await;
    assert!(
        rest.iter()
            .all(|e| e.r#type != WorkOrderCompleted::TYPE_NAME),
        "{rest:?}"
    );
    // The order's work order is still its production run.
    assert_eq!(
        production.current_work_order_id(order).await?,
        planned.work_order_id
    );
    production.stop().await
}

#[tokio::test]
async fn rework_of_an_order_without_a_work_order_or_without_items_is_dead_lettered()
-> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;
    let mut dead = Reader::open(
        &production.bus,
        streams::DEAD_LETTERS,
        &subjects::dead_letter(gendan_production::COMMANDS_CONSUMER),
    )
    .await?;
    let rework = |order: &str, items| StartRework {
        order_id: order.into(),
        revision: 1,
        items,
        nonconformance_id: "nc-9".into(),
        reason: "stains".into(),
    };

    production
        .command("o-never", &rework("o-never", shirts(4)))
        .await?;
    let (reason, original) = dead.dead_letter().await?;
    assert!(
        reason.contains("order_id") && reason.contains("o-never"),
        "reason: {reason}"
    );
    assert_eq!(original.r#type, StartRework::TYPE_NAME);

    // An order with a work order, but nothing named to rework.
    production
        .command(
            "o-empty",
            &PlanWorkOrder {
                amendment: 0,
                order_id: "o-empty".into(),
                items: shirts(2),
                earliest_start: MONDAY.into(),
                revision: 1,
            },
        )
        .await?;
    events.until::<WorkOrderPlanned>().await?;
    production
        .command("o-empty", &rework("o-empty", Vec::new()))
        .await?;
    let (reason, _) = dead.dead_letter().await?;
    assert!(reason.contains("items"), "reason: {reason}");

    assert_eq!(
        production
            .count("SELECT count(*) FROM work_orders WHERE kind = 'rework'")
            .await,
        0
    );
    let answers = events.drain().await;
    assert!(
        answers.iter().all(|e| e.r#type != ReworkPlanned::TYPE_NAME),
        "{answers:?}"
    );
    production.stop().await
}

#[tokio::test]
async fn cancelling_stops_the_production_run_and_its_rework() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;
    let order = "o-both";
    // The run in the future and the rework from today: all their capacity
    // is still to come.
    production
        .command(
            order,
            &PlanWorkOrder {
                amendment: 0,
                order_id: order.into(),
                items: shirts(12),
                earliest_start: "2030-03-04".into(),
                revision: 1,
            },
        )
        .await?;
    let (_, planned) = events.until::<WorkOrderPlanned>().await?;
    production
        .command(
            order,
            &StartRework {
                order_id: order.into(),
                revision: 1,
                items: shirts(4),
                nonconformance_id: "nc-2".into(),
                reason: "wrong thread colour".into(),
            },
        )
        .await?;
    events.until::<ReworkPlanned>().await?;

    let cancel = CancelWorkOrder {
        order_id: order.into(),
        reason: "customer withdrew".into(),
    };
    production.command(order, &cancel).await?;
    let (_, cancelled) = events.until::<WorkOrderCancelled>().await?;
    assert_eq!(cancelled.work_order_id, planned.work_order_id);
    // 20 h of the run and 4 h of the rework.
    assert!(
        (cancelled.released_hours - 24.0).abs() < 1e-9,
        "released {}",
        cancelled.released_hours
    );
    assert_eq!(
        production
            .count("SELECT count(*) FROM work_orders WHERE status = 'cancelled'")
            .await,
        2
    );
    assert_eq!(
        production
            .count("SELECT count(*) FROM capacity_bookings")
            .await,
        0
    );
    production.stop().await
}

#[tokio::test]
async fn an_overdue_wait_gets_the_completion_again_or_the_status() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;
    let mut dead = Reader::open(
        &production.bus,
        streams::DEAD_LETTERS,
        &subjects::dead_letter(gendan_production::COMMANDS_CONSUMER),
    )
    .await?;
    let plan = |order: &str, quantity| PlanWorkOrder {
        amendment: 0,
        order_id: order.into(),
        items: shirts(quantity),
        earliest_start: MONDAY.into(),
        revision: 1,
    };
    let at = Some(gendan_proto::timestamp_from(
        gendan_proto::date_from_str(MONDAY)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap()
            .and_utc(),
    ));
    let reported = |order: &str, stage: &str, good| MesQuantityReported {
        order_id: order.into(),
        product: "shirt".into(),
        stage: stage.into(),
        good,
        scrap: 0,
        at,
    };
    let completed = |order: &str, stage: &str| MesStageCompleted {
        order_id: order.into(),
        product: "shirt".into(),
        stage: stage.into(),
        at,
    };
    let restate = |order: &str, revision| RestateFact {
        order_id: order.into(),
        step: "production_completed".into(),
        awaited: WorkOrderCompleted::TYPE_NAME.into(),
        revision,
    };

    // A finished work order: its completion is the fact of the work order.
    let done = "o-restated";
    production.command(done, &plan(done, 2)).await?;
    events.until::<WorkOrderPlanned>().await?;
    for stage in ["cutting", "sewing"] {
        production.mes(done, &reported(done, stage, 2)).await?;
        production.mes(done, &completed(done, stage)).await?;
    }
    let (envelope, completion) = events.until::<WorkOrderCompleted>().await?;
    assert_eq!(completion.good_quantity, 2);
    // The key the restatement announces it under (the work order's): the
    // same event id, so the bus and every consumer drop the repeat.
    let key = format!("work_order:{}", completion.work_order_id);
    assert_eq!(
        envelope.event_id,
        gendan_messaging::fact_id("production", WorkOrderCompleted::TYPE_NAME, done, &key)
            .to_string()
    );
    production.repeat(done, &restate(done, 1)).await?;
    production.repeat(done, &restate(done, 0)).await?;
    eventually(WAIT, "the restatements relayed", || async {
        (production.count("SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await?;
    let rest = events.drain().await;
    assert!(
        rest.iter()
            .all(|e| e.r#type != StatusReported::TYPE_NAME
                && e.r#type != WorkOrderCompleted::TYPE_NAME),
        "{rest:?}"
    );

    // An unfinished one: where it stands, in words.
    let open = "o-sewing";
    production.command(open, &plan(open, 12)).await?;
    let (_, planned) = events.until::<WorkOrderPlanned>().await?;
    production.mes(open, &reported(open, "cutting", 12)).await?;
    production.mes(open, &completed(open, "cutting")).await?;
    production.mes(open, &reported(open, "sewing", 5)).await?;
    // The MES consumer applies them apart from the commands: wait for the
    // sewing count before asking.
    loop {
        let (_, progressed) = events.until::<WorkOrderProgressed>().await?;
        if progressed.stage == "sewing" {
            break;
        }
    }
    production.command(open, &restate(open, 1)).await?;
    let (envelope, status) = events.until::<StatusReported>().await?;
    assert_eq!(envelope.order_id, open);
    assert_eq!(
        (status.step.as_str(), status.awaited.as_str()),
        ("production_completed", WorkOrderCompleted::TYPE_NAME)
    );
    assert!(
        status.status.starts_with(&format!(
            "work order {} revision 1: stage sewing in progress, 5 of 12 good; planned end {}",
            planned.work_order_id, planned.planned_end
        )),
        "{}",
        status.status
    );
    production.command(open, &restate(open, 2)).await?;
    let (_, status) = events.until::<StatusReported>().await?;
    assert_eq!(status.status, "no production run planned for revision 2");

    // A fact production does not announce: dead-lettered, the field named.
    let mut shipped = restate(open, 1);
    shipped.awaited = "gendan.v1.Shipped".into();
    production.command(open, &shipped).await?;
    let (reason, original) = dead.dead_letter().await?;
    assert!(reason.contains("awaited"), "reason: {reason}");
    assert_eq!(original.r#type, RestateFact::TYPE_NAME);

    production.stop().await
}

/// A versioned check of `quantity` shirts for `order_id`, work from the
/// Monday of a week in 2030 (all of it still to come).
fn reserving_check(order_id: &str, quantity: u32, revision: u32) -> CheckOrderCapacity {
    CheckOrderCapacity {
        order_id: order_id.to_owned(),
        items: shirts(quantity),
        requested_delivery_date: "2099-12-31".into(),
        earliest_start: "2030-03-04".into(),
        revision,
    }
}

impl Production {
    /// Live reservations of `order_id`.
    async fn reservations_of(&self, order_id: &str) -> anyhow::Result<i64> {
        let count = sqlx::query_scalar(
            "SELECT count(*) FROM work_orders \
             WHERE order_id = $1 AND kind = 'reservation' AND status = 'planned'",
        )
        .bind(order_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    /// Work centre days booked beyond their calendars, from 2030 on.
    async fn overbooked(&self) -> anyhow::Result<Vec<gendan_production::catalog::Overbooked>> {
        let mut conn = self.pool.acquire().await?;
        let from = gendan_proto::date_from_str("2030-01-01").expect("a date");
        Ok(gendan_production::catalog::overbooked(&mut conn, from).await?)
    }
}

#[tokio::test]
async fn a_check_reserves_its_hours_and_the_plan_books_the_run_in_them() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;

    // 12 shirts: 8 h of cutting on Monday, 12 h of sewing Monday and
    // Tuesday, reserved for o-r.
    let check = reserving_check("o-r", 12, 1);
    production.command("o-r", &check).await?;
    let (envelope, reserved) = events.until::<CapacityChecked>().await?;
    assert_eq!(reserved.revision, 1);
    assert_eq!(reserved.earliest_completion, "2030-03-05");
    assert!(!reserved.reserved_until.is_empty(), "{reserved:?}");
    assert_eq!(
        envelope.event_id,
        gendan_messaging::fact_id(
            "production",
            CapacityChecked::TYPE_NAME,
            "o-r",
            "capacity-check:1"
        )
        .to_string()
    );
    assert!((production.booked_hours().await? - 20.0).abs() < 1e-9);

    // The saga re-sends the check: the same fact, nothing booked again.
    production.repeat("o-r", &check).await?;
    assert!((production.booked_hours().await? - 20.0).abs() < 1e-9);
    assert_eq!(production.reservations_of("o-r").await?, 1);

    // Another order checked next is promised what is left: its cutting
    // cannot start before Tuesday. Without the reservation it would have
    // been promised o-r's Monday.
    production
        .command("o-s", &reserving_check("o-s", 4, 1))
        .await?;
    let (_, other) = events.until::<CapacityChecked>().await?;
    assert_eq!(other.order_id, "o-s");
    assert_eq!(other.stages[0].planned_start, "2030-03-05");
    assert!((production.booked_hours().await? - 28.0).abs() < 1e-9);

    // Planned after confirmation, o-r's run is booked in its reserved
    // hours: the same days, the reservation used up, nothing booked twice.
    let plan = PlanWorkOrder {
        order_id: "o-r".into(),
        items: shirts(12),
        earliest_start: "2030-03-04".into(),
        revision: 1,
        amendment: 0,
    };
    production.command("o-r", &plan).await?;
    let (_, planned) = events.until::<WorkOrderPlanned>().await?;
    assert_eq!(
        (planned.planned_start.as_str(), planned.planned_end.as_str()),
        ("2030-03-04", "2030-03-05")
    );
    assert_eq!(production.reservations_of("o-r").await?, 0);
    assert!((production.booked_hours().await? - 28.0).abs() < 1e-9);
    // The MES and GetWorkOrder see the run, never a reservation.
    assert_eq!(
        production.current_work_order_id("o-r").await?,
        planned.work_order_id
    );

    // o-s is reviewed again (an amendment): its new check replaces its
    // reservation in one step, keeping its place.
    production
        .command("o-s", &reserving_check("o-s", 4, 2))
        .await?;
    let (_, again) = events.until::<CapacityChecked>().await?;
    assert_eq!((again.order_id.as_str(), again.revision), ("o-s", 2));
    assert_eq!(again.stages[0].planned_start, "2030-03-05");
    assert_eq!(production.reservations_of("o-s").await?, 1);
    assert!((production.booked_hours().await? - 28.0).abs() < 1e-9);

    // Cancelled in review: its hours are given back once.
    let release = ReleaseCapacity {
        order_id: "o-s".into(),
        reason: "order cancelled".into(),
    };
    production.command("o-s", &release).await?;
    let (_, released) = events.until::<CapacityReleased>().await?;
    assert!((released.released_hours - 8.0).abs() < 1e-9, "{released:?}");
    production.repeat("o-s", &release).await?;
    assert_eq!(production.reservations_of("o-s").await?, 0);
    assert!((production.booked_hours().await? - 20.0).abs() < 1e-9);
    assert!(production.overbooked().await?.is_empty());
    production.stop().await
}

#[tokio::test]
async fn a_lapsed_hold_is_swept_by_the_next_check_and_a_failed_plan_keeps_its_reservation()
-> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;

    production
        .command("o-t", &reserving_check("o-t", 12, 1))
        .await?;
    events.until::<CapacityChecked>().await?;
    // Its review was abandoned two weeks ago.
    sqlx::query("UPDATE work_orders SET hold_until = current_date - 1 WHERE order_id = 'o-t'")
        .execute(&production.pool)
        .await?;
    production
        .command("o-u", &reserving_check("o-u", 12, 1))
        .await?;
    let (_, next) = events.until::<CapacityChecked>().await?;
    // o-t's Monday went back to the factory and o-u got it.
    assert_eq!(next.planned_start, "2030-03-04");
    assert_eq!(production.reservations_of("o-t").await?, 0);
    let reason: String =
        sqlx::query_scalar("SELECT cancel_reason FROM work_orders WHERE order_id = 'o-t'")
            .fetch_one(&production.pool)
            .await?;
    assert_eq!(reason, "reservation lapsed");

    // A plan that cannot be made (the routing's product is not the one
    // reserved) is answered as a failure and keeps the reservation.
    production
        .command(
            "o-u",
            &PlanWorkOrder {
                order_id: "o-u".into(),
                items: vec![ProductQuantity {
                    product: "no-such-product".into(),
                    quantity: 5,
                }],
                earliest_start: "2030-03-04".into(),
                revision: 1,
                amendment: 0,
            },
        )
        .await?;
    events.until::<WorkOrderPlanningFailed>().await?;
    assert_eq!(production.reservations_of("o-u").await?, 1);
    assert!((production.booked_hours().await? - 20.0).abs() < 1e-9);

    // Cancelling the order stops the reservation too.
    production
        .command(
            "o-u",
            &CancelWorkOrder {
                order_id: "o-u".into(),
                reason: "customer withdrew".into(),
            },
        )
        .await?;
    let (_, cancelled) = events.until::<WorkOrderCancelled>().await?;
    assert!(
        (cancelled.released_hours - 20.0).abs() < 1e-9,
        "{cancelled:?}"
    );
    assert_eq!(production.reservations_of("o-u").await?, 0);
    production.stop().await
}

#[tokio::test]
async fn concurrent_checks_on_a_nearly_full_factory_never_promise_the_same_hours()
-> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut events =
        Reader::open(&production.bus, streams::EVENTS, "gendan.evt.production.>").await?;

    // 20 orders of 4 shirts (4 h of cutting, 4 h of sewing each) checked
    // at once: two fit on a day, so without reservations all 20 would be
    // promised the same Monday.
    const ORDERS: usize = 20;
    let sends = (0..ORDERS).map(|n| {
        let order_id = format!("o-c{n}");
        let check = reserving_check(&order_id, 4, 1);
        let production = &production;
        async move { production.command(&order_id, &check).await }
    });
    futures::future::try_join_all(sends).await?;
    let mut completions = Vec::new();
    for _ in 0..ORDERS {
        let (_, answer) = events.until::<CapacityChecked>().await?;
        assert!(answer.problem.is_empty(), "{answer:?}");
        completions.push(answer.earliest_completion);
    }
    assert!(production.overbooked().await?.is_empty());
    assert!((production.booked_hours().await? - 8.0 * ORDERS as f64).abs() < 1e-6);
    // Sewing takes half a day per order: no day is promised to more than
    // two of them.
    completions.sort();
    for day in &completions {
        let promised = completions.iter().filter(|other| *other == day).count();
        assert!(
            promised <= 2,
            "{day} promised to {promised} orders: {completions:?}"
        );
    }
    production.stop().await
}
