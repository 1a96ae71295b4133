//! Equipment down and up from the MES, against the production service over
//! real NATS and PostgreSQL: a breakdown moves the work planned on the
//! centre past it and says why in words a customer reads, capacity checks
//! avoid the downtime while the centre is down, a repeated report changes
//! nothing, the centre coming back up re-plans against the real downtime
//! and resolves the reschedule, and bad repair times or unknown centres are
//! refused with the reason.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use gendan_messaging::{Bus, Cause, Outgoing, streams, subjects};
use gendan_production::Application;
use gendan_proto::TypeName;
use gendan_proto::v1::production_service_client::ProductionServiceClient;
use gendan_proto::v1::{
    CheckCapacityRequest, EquipmentStatusChanged, GetWorkOrderRequest, ListWorkCentresRequest,
    MesEquipmentDown, MesEquipmentUp, PlanWorkOrder, ProductQuantity, Routing, RoutingStage,
    StagePlan, WorkCentre, WorkOrder, WorkOrderPlanned, WorkOrderRescheduled,
};
use gendan_tests::{SubjectReader, TestDb, TestNats, eventually};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A Monday: plans below are easy to check by hand from it.
const MONDAY: &str = "2026-03-02";
const WAIT: Duration = Duration::from_secs(15);
/// How long to listen for something that must not come.
const QUIET: Duration = Duration::from_millis(700);

struct Production {
    nats: TestNats,
    _db: TestDb,
    bus: Bus,
    pool: PgPool,
    client: ProductionServiceClient<Channel>,
    events: SubjectReader,
    cancel: CancellationToken,
    task: JoinHandle<gendan_production::Result<()>>,
}

impl Production {
    async fn start() -> anyhow::Result<Self> {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await?;
        let db = TestDb::create().await?;
        let settings = gendan_tests::service_settings(&db, &nats, "production");
        let app = Application::build(settings).await?;
        let port = app.port();
        let pool = app.pool().clone();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        let client = ProductionServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
        let bus = Bus::connect(&nats.url, "test").await?;
        let events =
            SubjectReader::open(&nats.url, streams::EVENTS, "gendan.evt.production.>").await?;
        Ok(Production {
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

    /// CUT and SEW, 8 hours Monday to Friday; a shirt is cut (0.5 h/unit +
    /// 2 h set-up) then sewn (1 h/unit), a tote is only sewn (1 h/unit).
    async fn seed(&mut self) -> anyhow::Result<()> {
        for code in ["CUT", "SEW"] {
            self.client
                .upsert_work_centre(WorkCentre {
                    code: code.to_owned(),
                    hours_per_day: 8.0,
                    ..WorkCentre::default()
                })
                .await?;
        }
        let stage = |stage: &str, work_centre: &str, hours_per_unit, setup_hours| RoutingStage {
            stage: stage.to_owned(),
            work_centre: work_centre.to_owned(),
            hours_per_unit,
            setup_hours,
        };
        let routings = [
            (
                "shirt",
                vec![
                    stage("cutting", "CUT", 0.5, 2.0),
                    stage("sewing", "SEW", 1.0, 0.0),
                ],
            ),
            ("tote", vec![stage("sewing", "SEW", 1.0, 0.0)]),
        ];
        for (product, stages) in routings {
            self.client
                .set_routing(Routing {
                    product: product.to_owned(),
                    stages,
                })
                .await?;
        }
        Ok(())
    }

    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let subject = subjects::command("production", &subjects::token_for_type(M::TYPE_NAME));
        let message = Outgoing::new(subject, "test", order_id, payload, &Cause::root(order_id));
        self.bus.publish(&message).await?;
        Ok(())
    }

    /// Publishes an equipment event as the MES does: about no order.
    async fn mes<M: prost::Message + TypeName>(&self, payload: &M) -> anyhow::Result<()> {
        let token = subjects::token_for_type(M::TYPE_NAME);
        let subject = subjects::mes(token.trim_start_matches("mes_"));
        let message = Outgoing::new(subject, "mes:line-1", "", payload, &Cause::root(""));
        self.bus.publish(&message).await?;
        Ok(())
    }

    async fn next<M: prost::Message + TypeName + Default>(&mut self) -> anyhow::Result<M> {
        self.events
            .next_of_type(M::TYPE_NAME, WAIT)
            .await?
            .decode::<M>()
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or(-1)
    }

    /// Waits until the MES consumer has handled `messages` and every event
    /// is published, so a later quiet stream means nothing was emitted.
    async fn settled(&self, messages: i64) -> anyhow::Result<()> {
        eventually(WAIT, "MES messages handled", || async {
            let handled = self
                .count("SELECT count(*) FROM inbox WHERE consumer = 'production-mes'")
                .await;
            let pending = self.count("SELECT count(*) FROM outbox").await;
            (handled == messages && pending == 0).then_some(())
        })
        .await
    }

    async fn work_order(&mut self, order_id: &str) -> anyhow::Result<WorkOrder> {
        let request = GetWorkOrderRequest {
            order_id: order_id.to_owned(),
        };
        Ok(self.client.get_work_order(request).await?.into_inner())
    }

    async fn work_centre(&mut self, code: &str) -> anyhow::Result<WorkCentre> {
        let centres = self
            .client
            .list_work_centres(ListWorkCentresRequest {})
            .await?
            .into_inner()
            .work_centres;
        centres
            .into_iter()
            .find(|centre| centre.code == code)
            .ok_or_else(|| anyhow::anyhow!("no work centre {code}"))
    }

    /// Where 4 hours of new sewing would go, starting on `from`.
    async fn new_sewing(&mut self, from: &str) -> anyhow::Result<StagePlan> {
        let check = self
            .client
            .check_capacity(CheckCapacityRequest {
                items: vec![ProductQuantity {
                    product: "tote".to_owned(),
                    quantity: 4,
                }],
                earliest_start: from.to_owned(),
            })
            .await?
            .into_inner();
        check
            .stages
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("capacity check without stages"))
    }
}

fn moment(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .expect("a test timestamp")
        .and_utc()
}

fn sew_down() -> MesEquipmentDown {
    MesEquipmentDown {
        work_centre: "SEW".to_owned(),
        reason: "motor failure".to_owned(),
        at: Some(gendan_proto::timestamp_from(moment("2026-03-03 09:00"))),
        expected_hours: 48.0,
    }
}

/// 12 shirts planned from Monday: cutting 8 h on Monday; sewing 8 h on
/// Monday and 4 h on Tuesday. Then SEW breaks down on Tuesday at 09:00 for
/// an expected 48 hours. Returns the plan and the reschedule announced.
async fn breakdown(
    production: &mut Production,
) -> anyhow::Result<(WorkOrderPlanned, WorkOrderRescheduled)> {
    production.seed().await?;
    let plan = PlanWorkOrder {
        amendment: 0,
        order_id: "o-1".to_owned(),
        items: vec![ProductQuantity {
            product: "shirt".to_owned(),
            quantity: 12,
        }],
        earliest_start: MONDAY.to_owned(),
        revision: 1,
    };
    production.command("o-1", &plan).await?;
    let planned: WorkOrderPlanned = production.next().await?;
    assert_eq!(planned.planned_end, "2026-03-03");
    // Before the breakdown SEW has Tuesday afternoon free.
    assert_eq!(
        production.new_sewing("2026-03-03").await?.planned_start,
        "2026-03-03"
    );

    production.mes(&sew_down()).await?;
    let status: EquipmentStatusChanged = production.next().await?;
    assert!(status.down && status.work_centre == "SEW", "{status:?}");
    let rescheduled: WorkOrderRescheduled = production.next().await?;
    Ok((planned, rescheduled))
}

#[tokio::test]
async fn equipment_down_moves_the_work_on_its_centre_past_the_downtime() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    let (planned, rescheduled) = breakdown(&mut production).await?;

    // The 4 sewing hours left take the 3 h of Tuesday before 09:00 and
    // 1 h on Thursday after 09:00, when the line is expected back. Each
    // stage says where it now ends: sewing moved, cutting did not.
    let stage_ends: Vec<(&str, &str, &str)> = rescheduled
        .stages
        .iter()
        .map(|s| {
            (
                s.stage.as_str(),
                s.planned_end.as_str(),
                s.projected_end.as_str(),
            )
        })
        .collect();
    assert_eq!(
        stage_ends,
        [
            ("cutting", "2026-03-02", "2026-03-02"),
            ("sewing", "2026-03-05", "2026-03-05")
        ]
    );
    assert_eq!(
        WorkOrderRescheduled {
            stages: Vec::new(),
            ..rescheduled
        },
        WorkOrderRescheduled {
            order_id: "o-1".to_owned(),
            work_order_id: planned.work_order_id.clone(),
            revision: 1,
            work_centre: "SEW".to_owned(),
            cause: "line SEW down since 2026-03-03 09:00 (motor failure), about 2 days' delay"
                .to_owned(),
            previous_end: "2026-03-03".to_owned(),
            projected_end: "2026-03-05".to_owned(),
            downtime_hours: 48.0,
            resolved: false,
            stages: Vec::new(),
        }
    );

    let work_order = production.work_order("o-1").await?;
    assert_eq!(work_order.planned_end, "2026-03-05");
    let dates: Vec<(&str, &str, &str)> = work_order
        .stages
        .iter()
        .map(|s| {
            (
                s.stage.as_str(),
                s.planned_start.as_str(),
                s.planned_end.as_str(),
            )
        })
        .collect();
    assert_eq!(
        dates,
        [
            ("cutting", "2026-03-02", "2026-03-02"),
            ("sewing", "2026-03-02", "2026-03-05")
        ]
    );

    let sew = production.work_centre("SEW").await?;
    assert!(sew.down, "{sew:?}");
    assert_eq!(sew.typical_repair_hours, 24.0);
    assert!(!production.work_centre("CUT").await?.down);

    // New sewing cannot use the downtime: Thursday after the repair has
    // the 4 hours left.
    let sewing = production.new_sewing("2026-03-03").await?;
    assert_eq!(
        (sewing.planned_start.as_str(), sewing.planned_end.as_str()),
        ("2026-03-05", "2026-03-05")
    );
    // Moved, not doubled: cutting 8 h and sewing 12 h are still booked.
    let booked: f64 = sqlx::query_scalar("SELECT sum(hours)::float8 FROM capacity_bookings")
        .fetch_one(&production.pool)
        .await?;
    assert!((booked - 20.0).abs() < 1e-9, "booked {booked} hours");

    // The MES reports the same breakdown again: nothing new.
    production.mes(&sew_down()).await?;
    production.settled(2).await?;
    let repeat = production.events.next(QUIET).await?;
    assert!(
        repeat.is_none(),
        "{:?}",
        repeat.map(|seen| seen.type_name())
    );
    assert_eq!(production.count("SELECT count(*) FROM downtimes").await, 1);
    assert_eq!(
        production.work_order("o-1").await?.planned_end,
        "2026-03-05"
    );

    production.stop().await
}

#[tokio::test]
async fn equipment_up_replans_against_the_real_downtime_and_resolves() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    let (planned, _) = breakdown(&mut production).await?;

    // Repaired after 24 hours instead of 48.
    let up = MesEquipmentUp {
        work_centre: "SEW".to_owned(),
        at: Some(gendan_proto::timestamp_from(moment("2026-03-04 09:00"))),
    };
    production.mes(&up).await?;
    let status: EquipmentStatusChanged = production.next().await?;
    assert!(!status.down, "{status:?}");
    // Sewing gets Tuesday's 3 h and 1 h of Wednesday after 09:00 back.
    let resolved: WorkOrderRescheduled = production.next().await?;
    assert_eq!(resolved.work_order_id, planned.work_order_id);
    assert!(resolved.resolved, "{resolved:?}");
    assert_eq!(
        (
            resolved.previous_end.as_str(),
            resolved.projected_end.as_str()
        ),
        ("2026-03-05", "2026-03-04")
    );
    assert_eq!(resolved.downtime_hours, 24.0);
    let sewing = resolved
        .stages
        .iter()
        .find(|s| s.stage == "sewing")
        .unwrap();
    assert_eq!(sewing.projected_end, "2026-03-04");
    assert_eq!(
        resolved.cause,
        "line SEW back up at 2026-03-04 09:00 after 24 hours down (motor failure), \
         about 1 day's delay"
    );

    assert!(!production.work_centre("SEW").await?.down);
    assert_eq!(
        production.work_order("o-1").await?.planned_end,
        "2026-03-04"
    );
    // Wednesday after the repair is free again for new work.
    assert_eq!(
        production.new_sewing("2026-03-03").await?.planned_start,
        "2026-03-04"
    );

    // Up again while up: nothing new.
    production.mes(&up).await?;
    production.settled(3).await?;
    let repeat = production.events.next(QUIET).await?;
    assert!(
        repeat.is_none(),
        "{:?}",
        repeat.map(|seen| seen.type_name())
    );

    production.stop().await
}

#[tokio::test]
async fn repair_times_are_validated_and_unknown_centres_dead_lettered() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;

    let status = production
        .client
        .upsert_work_centre(WorkCentre {
            code: "PAINT".to_owned(),
            hours_per_day: 8.0,
            typical_repair_hours: 1000.0,
            ..WorkCentre::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("typical_repair_hours"),
        "{}",
        status.message()
    );
    assert_eq!(
        production
            .count("SELECT count(*) FROM work_centres WHERE code = 'PAINT'")
            .await,
        0
    );

    // Within bounds it is stored; the down state is not the client's to set.
    let stored = production
        .client
        .upsert_work_centre(WorkCentre {
            code: "PAINT".to_owned(),
            hours_per_day: 8.0,
            typical_repair_hours: 36.0,
            down: true,
            ..WorkCentre::default()
        })
        .await?
        .into_inner();
    assert_eq!((stored.typical_repair_hours, stored.down), (36.0, false));

    let mut dead = SubjectReader::open(
        &production.nats.url,
        streams::DEAD_LETTERS,
        &subjects::dead_letter(gendan_production::MES_CONSUMER),
    )
    .await?;
    production
        .mes(&MesEquipmentDown {
            work_centre: "WELD".to_owned(),
            reason: "arc fault".to_owned(),
            ..MesEquipmentDown::default()
        })
        .await?;
    let letter = dead
        .next(WAIT)
        .await?
        .ok_or_else(|| anyhow::anyhow!("nothing dead-lettered"))?;
    let reason = letter.header("Gendan-Dlq-Reason").unwrap_or_default();
    assert!(reason.contains("WELD"), "reason: {reason}");
    assert_eq!(letter.type_name(), MesEquipmentDown::TYPE_NAME);
    assert_eq!(production.count("SELECT count(*) FROM downtimes").await, 0);

    production.stop().await
}
