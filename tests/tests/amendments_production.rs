//! An amended order's production, against the production service over real
//! NATS and PostgreSQL, with the test playing the saga and the MES: the
//! capacity check of an amended order leaves its own run's bookings out, a
//! run planned for an amendment supersedes the open run (cancelled with the
//! reason, its bookings released) and makes per stage only what is still
//! needed beyond the good units made, a re-sent plan is the same fact, MES
//! reports land on the new run (and on a product the amendment removed are
//! dead-lettered with the reason), and an amendment downwards after the run
//! completed is planned and completed at once.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use gendan_messaging::{Cause, Outgoing, fact_id, streams, subjects};
use gendan_production::Application;
use gendan_proto::TypeName;
use gendan_proto::v1::production_service_client::ProductionServiceClient;
use gendan_proto::v1::{
    CapacityChecked, CheckOrderCapacity, GetWorkOrderRequest, MesQuantityReported,
    MesStageCompleted, PlanWorkOrder, ProductQuantity, Routing, RoutingStage, WorkCentre,
    WorkOrder, WorkOrderCompleted, WorkOrderPlanned, WorkOrderProgressed,
};
use gendan_tests::{Running, SubjectReader};
use tonic::transport::Channel;
use uuid::Uuid;

/// A Monday years ahead: every booking of the plans below is still to
/// come, so cancelling a run releases all of it, and the dates are easy to
/// check by hand.
const MONDAY: &str = "2030-03-04";
/// The requested delivery date the capacity checks ask about.
const REQUESTED: &str = "2030-04-01";
const WAIT: Duration = Duration::from_secs(30);

struct Production {
    svc: Running,
    client: ProductionServiceClient<Channel>,
    events: SubjectReader,
}

impl Production {
    async fn start() -> anyhow::Result<Self> {
        let svc = Running::start("production", Application::build).await?;
        let client = ProductionServiceClient::connect(svc.endpoint()).await?;
        let events =
            SubjectReader::open(&svc.nats.url, streams::EVENTS, "gendan.evt.production.>").await?;
        Ok(Production {
            svc,
            client,
            events,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.svc.stop().await
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

    /// Sends a command as the saga does.
    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.command(order_id, payload).await.map(drop)
    }

    /// Sends a command again on purpose and waits until production handled
    /// it: its answer is the same fact under the same event id, so nothing
    /// new reaches the bus.
    async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.repeat(order_id, payload).await
    }

    /// Publishes a shop-floor event as the MES does.
    async fn mes<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let token = subjects::token_for_type(M::TYPE_NAME);
        let subject = subjects::mes(token.trim_start_matches("mes_"));
        let message = Outgoing::new(
            subject,
            "mes:line-1",
            order_id,
            payload,
            &Cause::root(order_id),
        );
        self.svc.bus.publish(&message).await?;
        Ok(())
    }

    /// The next event of type `M` with its event id, skipping others.
    async fn next<M: prost::Message + TypeName + Default>(
        &mut self,
    ) -> anyhow::Result<(String, M)> {
        let seen = self.events.next_of_type(M::TYPE_NAME, WAIT).await?;
        Ok((seen.envelope()?.event_id, seen.decode::<M>()?))
    }

    /// Capacity hours a work order holds, all centres and days.
    async fn booked_hours(&self, work_order_id: &str) -> anyhow::Result<f64> {
        let hours: f64 = sqlx::query_scalar(
            "SELECT coalesce(sum(hours), 0)::float8 FROM capacity_bookings \
             WHERE work_order_id = $1",
        )
        .bind(Uuid::parse_str(work_order_id)?)
        .fetch_one(&self.svc.pool)
        .await?;
        Ok(hours)
    }

    /// Capacity hours booked by anyone.
    async fn all_booked_hours(&self) -> anyhow::Result<f64> {
        let hours: f64 =
            sqlx::query_scalar("SELECT coalesce(sum(hours), 0)::float8 FROM capacity_bookings")
                .fetch_one(&self.svc.pool)
                .await?;
        Ok(hours)
    }

    /// Per-stage bookings a work order holds.
    async fn stage_bookings(&self, work_order_id: &str) -> anyhow::Result<i64> {
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM stage_bookings WHERE work_order_id = $1")
                .bind(Uuid::parse_str(work_order_id)?)
                .fetch_one(&self.svc.pool)
                .await?;
        Ok(rows)
    }

    async fn work_orders_of(&self, order_id: &str) -> anyhow::Result<i64> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM work_orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&self.svc.pool)
            .await?;
        Ok(count)
    }

    /// Status and cancel reason of production run `revision` of the order.
    async fn run(&self, order_id: &str, revision: i32) -> anyhow::Result<(String, Option<String>)> {
        let row: (String, Option<String>) = sqlx::query_as(
            "SELECT status, cancel_reason FROM work_orders \
             WHERE order_id = $1 AND kind = 'production' AND revision = $2",
        )
        .bind(order_id)
        .bind(revision)
        .fetch_one(&self.svc.pool)
        .await?;
        Ok(row)
    }

    async fn work_order(&mut self, order_id: &str) -> anyhow::Result<WorkOrder> {
        let request = GetWorkOrderRequest {
            order_id: order_id.to_owned(),
        };
        Ok(self.client.get_work_order(request).await?.into_inner())
    }
}

fn items(entries: &[(&str, u32)]) -> Vec<ProductQuantity> {
    entries
        .iter()
        .map(|(product, quantity)| ProductQuantity {
            product: (*product).to_owned(),
            quantity: *quantity,
        })
        .collect()
}

fn shirts(quantity: u32) -> Vec<ProductQuantity> {
    items(&[("shirt", quantity)])
}

fn plan(
    order_id: &str,
    revision: u32,
    amendment: u32,
    items: Vec<ProductQuantity>,
) -> PlanWorkOrder {
    PlanWorkOrder {
        order_id: order_id.to_owned(),
        items,
        earliest_start: MONDAY.to_owned(),
        revision,
        amendment,
    }
}

fn check(order_id: &str, items: Vec<ProductQuantity>) -> CheckOrderCapacity {
    CheckOrderCapacity {
        order_id: order_id.to_owned(),
        items,
        requested_delivery_date: REQUESTED.to_owned(),
        earliest_start: MONDAY.to_owned(),
        // Unversioned: these checks only answer, they reserve nothing.
        revision: 0,
    }
}

/// 10:00 on `day`, when the MES reports.
fn moment(day: &str) -> DateTime<Utc> {
    let date: NaiveDate = gendan_proto::date_from_str(day).expect("a test date");
    date.and_hms_opt(10, 0, 0).expect("a time of day").and_utc()
}

fn reported(
    order_id: &str,
    (product, stage): (&str, &str),
    good: u32,
    day: &str,
) -> MesQuantityReported {
    MesQuantityReported {
        order_id: order_id.to_owned(),
        product: product.to_owned(),
        stage: stage.to_owned(),
        good,
        scrap: 0,
        at: Some(gendan_proto::timestamp_from(moment(day))),
    }
}

fn completed(order_id: &str, (product, stage): (&str, &str), day: &str) -> MesStageCompleted {
    MesStageCompleted {
        order_id: order_id.to_owned(),
        product: product.to_owned(),
        stage: stage.to_owned(),
        at: Some(gendan_proto::timestamp_from(moment(day))),
    }
}

/// Stage, quantity and hours of each planned stage.
fn stages(planned: &WorkOrderPlanned) -> Vec<(&str, u32, f64)> {
    planned
        .stages
        .iter()
        .map(|stage| (stage.stage.as_str(), stage.quantity, stage.hours))
        .collect()
}

fn work_order_fact(type_name: &str, order_id: &str, work_order_id: &str) -> String {
    fact_id(
        "production",
        type_name,
        order_id,
        &format!("work_order:{work_order_id}"),
    )
    .to_string()
}

#[tokio::test]
async fn an_amendment_supersedes_the_open_run_and_makes_only_what_is_still_needed()
-> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let order = "o-amend";

    // Revision 1: 100 shirts. Cutting 0.5 h x 100 + 2 h = 52 h on CUT
    // (Monday 4th to Tuesday 12th), sewing 100 h on SEW (to Thursday 28th).
    production
        .command(order, &plan(order, 1, 0, shirts(100)))
        .await?;
    let (_, first) = production.next::<WorkOrderPlanned>().await?;
    assert_eq!(
        (first.revision, first.planned_end.as_str()),
        (1, "2030-03-28")
    );
    assert!((production.booked_hours(&first.work_order_id).await? - 152.0).abs() < 1e-9);

    // The amendment under review: the order checked again is not pushed
    // out by its own run, while another order with the same shirts waits
    // for that run's capacity.
    production
        .command(order, &check(order, shirts(100)))
        .await?;
    let (_, own) = production.next::<CapacityChecked>().await?;
    assert_eq!(own.order_id, order);
    assert_eq!(
        (own.earliest_completion.as_str(), own.feasible),
        (first.planned_end.as_str(), true),
        "{own:?}"
    );
    production
        .command("o-other", &check("o-other", shirts(100)))
        .await?;
    let (_, other) = production.next::<CapacityChecked>().await?;
    assert_eq!(
        (other.earliest_completion.as_str(), other.feasible),
        ("2030-04-15", false),
        "{other:?}"
    );

    // The MES: 60 shirts cut on the first run.
    production
        .mes(
            order,
            &reported(order, ("shirt", "cutting"), 60, "2030-03-05"),
        )
        .await?;
    let (_, cut) = production.next::<WorkOrderProgressed>().await?;
    assert_eq!(
        (cut.work_order_id.as_str(), cut.good_quantity),
        (first.work_order_id.as_str(), 60)
    );

    // Checked for 120: 60 left to cut (32 h), 120 to sew, without the
    // first run's bookings in the way.
    production
        .command(order, &check(order, shirts(120)))
        .await?;
    let (_, amended) = production.next::<CapacityChecked>().await?;
    assert_eq!(amended.earliest_completion, "2030-03-27", "{amended:?}");

    // Amendment 1: 120 shirts, planned as revision 2.
    let amend = plan(order, 2, 1, shirts(120));
    production.command(order, &amend).await?;
    let (planned_id, second) = production.next::<WorkOrderPlanned>().await?;
    assert_eq!(second.revision, 2);
    assert_ne!(second.work_order_id, first.work_order_id);
    assert_eq!(
        stages(&second),
        [("cutting", 60, 32.0), ("sewing", 120, 120.0)]
    );
    assert_eq!(
        (second.planned_start.as_str(), second.planned_end.as_str()),
        (MONDAY, "2030-03-27")
    );
    assert_eq!(
        production.run(order, 1).await?,
        (
            "cancelled".to_owned(),
            Some("superseded by amendment 1".to_owned())
        )
    );
    // The first run's bookings are released, the new run holds its own.
    assert_eq!(production.booked_hours(&first.work_order_id).await?, 0.0);
    assert_eq!(production.stage_bookings(&first.work_order_id).await?, 0);
    assert!((production.booked_hours(&second.work_order_id).await? - 152.0).abs() < 1e-9);
    assert!((production.all_booked_hours().await? - 152.0).abs() < 1e-9);

    // Re-sent: the same fact (one event id), no third work order, nothing
    // booked or cancelled again.
    assert_eq!(
        planned_id,
        work_order_fact(WorkOrderPlanned::TYPE_NAME, order, &second.work_order_id)
    );
    production.repeat(order, &amend).await?;
    assert_eq!(production.work_orders_of(order).await?, 2);
    assert!((production.all_booked_hours().await? - 152.0).abs() < 1e-9);

    // The MES goes on cutting: the report lands on the new run.
    production
        .mes(
            order,
            &reported(order, ("shirt", "cutting"), 60, "2030-03-06"),
        )
        .await?;
    let (_, cut) = production.next::<WorkOrderProgressed>().await?;
    assert_eq!(
        (cut.work_order_id.as_str(), cut.good_quantity),
        (second.work_order_id.as_str(), 60)
    );
    production
        .mes(order, &completed(order, ("shirt", "cutting"), "2030-03-07"))
        .await?;
    production
        .mes(
            order,
            &reported(order, ("shirt", "sewing"), 120, "2030-03-26"),
        )
        .await?;
    production
        .mes(order, &completed(order, ("shirt", "sewing"), "2030-03-27"))
        .await?;
    let (_, done) = production.next::<WorkOrderCompleted>().await?;
    assert_eq!(
        (
            done.work_order_id.as_str(),
            done.revision,
            done.good_quantity
        ),
        (second.work_order_id.as_str(), 2, 120)
    );

    // Amendment 2 after the run completed: down to 90 shirts. Everything
    // was made, so revision 3 is planned and completed at once.
    let today = gendan_proto::date_to_string(Utc::now().date_naive());
    let down = plan(order, 3, 2, shirts(90));
    production.command(order, &down).await?;
    let (_, third) = production.next::<WorkOrderPlanned>().await?;
    assert_eq!(third.revision, 3);
    assert_eq!(stages(&third), [("cutting", 0, 0.0), ("sewing", 0, 0.0)]);
    assert!(third.planned_start >= today, "{third:?}");
    assert_eq!(third.planned_start, third.planned_end);
    let (completed_id, finished) = production.next::<WorkOrderCompleted>().await?;
    assert_eq!(
        (
            finished.work_order_id.as_str(),
            finished.revision,
            finished.good_quantity,
            finished.scrap_quantity
        ),
        (third.work_order_id.as_str(), 3, 90, 0)
    );
    assert_eq!(finished.completed_on, third.planned_end);
    assert!(finished.hours_by_work_centre.is_empty(), "{finished:?}");
    assert_eq!(
        completed_id,
        work_order_fact(WorkOrderCompleted::TYPE_NAME, order, &third.work_order_id)
    );
    assert_eq!(production.booked_hours(&third.work_order_id).await?, 0.0);
    // The completed run stays as it was: only open runs are superseded.
    assert_eq!(
        production.run(order, 2).await?,
        ("completed".to_owned(), None)
    );

    let current = production.work_order(order).await?;
    assert_eq!(current.work_order_id, third.work_order_id);
    assert_eq!(current.status, "completed");
    assert!(
        current.stages.iter().all(|s| s.status == "completed"),
        "{current:?}"
    );
    assert_eq!(current.progress, 1.0);

    // Re-sent: its plan again (the same fact), no fourth work order.
    production.repeat(order, &down).await?;
    assert_eq!(production.work_orders_of(order).await?, 3);

    production.stop().await
}

#[tokio::test]
async fn reports_on_a_product_the_amendment_removed_are_dead_lettered() -> anyhow::Result<()> {
    let mut production = Production::start().await?;
    production.seed().await?;
    let mut dead = SubjectReader::open(
        &production.svc.nats.url,
        streams::DEAD_LETTERS,
        &subjects::dead_letter(gendan_production::MES_CONSUMER),
    )
    .await?;
    let order = "o-drop";

    production
        .command(
            order,
            &plan(order, 1, 0, items(&[("shirt", 10), ("tote", 5)])),
        )
        .await?;
    let (_, first) = production.next::<WorkOrderPlanned>().await?;
    assert_eq!(first.stages.len(), 3);

    // Amendment 1 drops the totes.
    production
        .command(order, &plan(order, 2, 1, shirts(10)))
        .await?;
    let (_, second) = production.next::<WorkOrderPlanned>().await?;
    assert!(
        second.stages.iter().all(|stage| stage.product == "shirt"),
        "{second:?}"
    );
    assert_eq!(production.booked_hours(&first.work_order_id).await?, 0.0);
    assert_eq!(
        production.run(order, 1).await?.1.as_deref(),
        Some("superseded by amendment 1")
    );

    // Totes sewn anyway: refused with the reason, the way any report on a
    // cancelled work order is.
    production
        .mes(order, &reported(order, ("tote", "sewing"), 5, "2030-03-05"))
        .await?;
    let letter = dead
        .next(WAIT)
        .await?
        .ok_or_else(|| anyhow::anyhow!("nothing dead-lettered"))?;
    let reason = letter.header("Gendan-Dlq-Reason").unwrap_or_default();
    assert!(
        reason.contains(order) && reason.contains("sewing") && reason.contains("cancelled"),
        "reason: {reason}"
    );
    assert_eq!(letter.type_name(), MesQuantityReported::TYPE_NAME);

    // The shirts' sewing lands on the new run.
    production
        .mes(
            order,
            &reported(order, ("shirt", "sewing"), 4, "2030-03-05"),
        )
        .await?;
    let (_, sewn) = production.next::<WorkOrderProgressed>().await?;
    assert_eq!(
        (
            sewn.work_order_id.as_str(),
            sewn.stage.as_str(),
            sewn.good_quantity
        ),
        (second.work_order_id.as_str(), "sewing", 4)
    );

    production.stop().await
}
