//! The quality service against real NATS and PostgreSQL: final inspections
//! requested by the saga (answered by revision, re-inspected under a new
//! one, tightened by the switching rules), results recorded by QA over gRPC
//! (pass, fail with a nonconformance, recording twice), incoming
//! inspections opened from procurement's goods receipts, in-process
//! inspections opened from production's stage progress, a pass restated
//! for an overdue wait (or the inspection's status), and validation errors
//! that name the field.

use std::time::Duration;

use gendan_messaging::{Bus, Cause, Outgoing, streams, subjects};
use gendan_proto::TypeName;
use gendan_proto::v1::quality_service_client::QualityServiceClient;
use gendan_proto::v1::{
    CloseNonconformanceRequest, DefectClass, DefectCount, FinalInspectionFailed,
    FinalInspectionOpened, FinalInspectionPassed, GetInspectionPlanRequest, GetInspectionRequest,
    GetSamplingPlanRequest, GoodsReceived, InProcessInspectionFailed, InProcessInspectionOpened,
    InProcessInspectionPassed, IncomingInspectionFailed, IncomingInspectionOpened,
    IncomingInspectionPassed, IncomingInspectionPlan, InspectionKind, InspectionPlan,
    InspectionSeverity, InspectionStatus, ListInspectionsRequest, ListNonconformancesRequest,
    MaterialsReady, NonconformanceClosed, NonconformanceDisposition, NonconformanceStatus,
    ProductQuantity, RecordInspectionResultRequest, RequestFinalInspection, RestateFact,
    StatusReported, WorkOrderProgressed,
};
use gendan_quality::Application;
use gendan_tests::{SubjectReader, TestDb, TestNats};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);

struct Quality {
    nats: TestNats,
    _db: TestDb,
    bus: Bus,
    pool: PgPool,
    client: QualityServiceClient<Channel>,
    events: SubjectReader,
    cancel: CancellationToken,
    task: JoinHandle<gendan_quality::Result<()>>,
}

impl Quality {
    async fn start() -> anyhow::Result<Self> {
        gendan_telemetry::init_for_tests();
        let nats = TestNats::start().await?;
        let db = TestDb::create().await?;
        let app = Application::build(gendan_tests::service_settings(&db, &nats, "quality")).await?;
        let port = app.port();
        let pool = app.pool().clone();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        let client = QualityServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
        let bus = Bus::connect(&nats.url, "test").await?;
        let events =
            SubjectReader::open(&nats.url, streams::EVENTS, "gendan.evt.quality.>").await?;
        Ok(Quality {
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

    async fn request_final(
        &self,
        order_id: &str,
        revision: u32,
        items: &[(&str, u32)],
    ) -> anyhow::Result<String> {
        let command = RequestFinalInspection {
            order_id: order_id.to_owned(),
            items: items
                .iter()
                .map(|(product, quantity)| ProductQuantity {
                    product: (*product).to_owned(),
                    quantity: *quantity,
                })
                .collect(),
            revision,
            ..Default::default()
        };
        let message = Outgoing::command(
            "test",
            "quality",
            order_id,
            &command,
            &Cause::root(order_id),
        );
        self.bus.publish(&message).await?;
        Ok(message.event_id().to_owned())
    }

    /// Sends a request again on purpose and waits until quality has handled
    /// it: its answer is the same fact under the same event id (the opening,
    /// or the result), so nothing new reaches the bus.
    async fn repeat_final(
        &self,
        order_id: &str,
        revision: u32,
        items: &[(&str, u32)],
    ) -> anyhow::Result<()> {
        let id = self.request_final(order_id, revision, items).await?;
        gendan_tests::handled(&self.pool, &id).await
    }

    /// Sends quality a command as the saga does.
    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let message =
            Outgoing::command("test", "quality", order_id, payload, &Cause::root(order_id));
        self.bus.publish(&message).await?;
        Ok(())
    }

    /// Publishes a procurement event as procurement would.
    async fn procurement<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let message = Outgoing::event("procurement", order_id, payload, &Cause::root(order_id));
        self.bus.publish(&message).await?;
        Ok(())
    }

    /// Publishes a production event as production would.
    async fn production<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        let message = Outgoing::event("production", order_id, payload, &Cause::root(order_id));
        self.bus.publish(&message).await?;
        Ok(())
    }

    async fn next<M: prost::Message + TypeName + Default>(&mut self) -> anyhow::Result<M> {
        self.events
            .next_of_type(M::TYPE_NAME, WAIT)
            .await?
            .decode::<M>()
    }

    /// Requests a final inspection and waits for its announcement.
    async fn open_final(
        &mut self,
        order_id: &str,
        revision: u32,
        items: &[(&str, u32)],
    ) -> anyhow::Result<FinalInspectionOpened> {
        self.request_final(order_id, revision, items).await?;
        let opened: FinalInspectionOpened = self.next().await?;
        anyhow::ensure!(opened.order_id == order_id, "opened {opened:?}");
        Ok(opened)
    }

    /// Records a clean sample and waits for the pass.
    async fn pass_final(
        &mut self,
        opened: &FinalInspectionOpened,
    ) -> anyhow::Result<FinalInspectionPassed> {
        self.client
            .record_inspection_result(result(&opened.inspection_id, opened.sample_size, vec![]))
            .await?;
        let passed: FinalInspectionPassed = self.next().await?;
        anyhow::ensure!(
            passed.inspection_id == opened.inspection_id,
            "passed {passed:?}"
        );
        Ok(passed)
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or(-1)
    }
}

fn defect(class: DefectClass, count: u32, description: &str) -> DefectCount {
    DefectCount {
        defect_class: class as i32,
        count,
        description: description.to_owned(),
    }
}

fn result(
    inspection_id: &str,
    sample_inspected: u32,
    defects: Vec<DefectCount>,
) -> RecordInspectionResultRequest {
    RecordInspectionResultRequest {
        inspection_id: inspection_id.to_owned(),
        inspector: "Zhang Min".to_owned(),
        sample_inspected,
        defects,
    }
}

fn assert_invalid(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains(field), "{}", status.message());
}

#[tokio::test]
async fn final_inspection_opens_with_the_iso_sample_and_passes() -> anyhow::Result<()> {
    let mut quality = Quality::start().await?;

    // 600 + 400 = lot 1000: code letter J, 80 units; defaults critical 0,
    // major 2.5 (Ac 5 Re 6), minor 4.0 (Ac 7 Re 8). A sender that leaves
    // the revision 0 asks for the first.
    quality
        .request_final("o-pass", 0, &[("shirt", 600), ("cap", 400)])
        .await?;
    let opened: FinalInspectionOpened = quality.next().await?;
    assert_eq!(opened.order_id, "o-pass");
    assert_eq!(
        (
            opened.lot_size,
            opened.code_letter.as_str(),
            opened.sample_size,
            opened.revision,
            opened.severity
        ),
        (1_000, "J", 80, 1, InspectionSeverity::Normal as i32)
    );

    // The saga re-sends revision 1: the same inspection, the same fact.
    quality
        .repeat_final("o-pass", 1, &[("shirt", 600), ("cap", 400)])
        .await?;
    assert_eq!(
        quality
            .count("SELECT count(*) FROM inspections WHERE order_id = 'o-pass'")
            .await,
        1
    );

    let inspection = quality
        .client
        .get_inspection(GetInspectionRequest {
            inspection_id: opened.inspection_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(inspection.status, InspectionStatus::Open as i32);
    assert_eq!(inspection.items.len(), 2);
    assert_eq!(
        (inspection.revision, inspection.severity),
        (1, InspectionSeverity::Normal as i32)
    );
    let plans: Vec<(u32, u32, u32)> = inspection
        .classes
        .iter()
        .map(|c| (c.sample_size, c.accept, c.reject))
        .collect();
    assert_eq!(plans, [(80, 0, 1), (80, 5, 6), (80, 7, 8)]);

    // 5 major (Ac 5) and 7 minor (Ac 7): still acceptable.
    let recorded = quality
        .client
        .record_inspection_result(result(
            &opened.inspection_id,
            80,
            vec![
                defect(DefectClass::Major, 3, "stain"),
                defect(DefectClass::Major, 2, "open seam"),
                defect(DefectClass::Minor, 7, "loose thread"),
            ],
        ))
        .await?
        .into_inner();
    assert_eq!(recorded.status, InspectionStatus::Passed as i32);
    assert_eq!(recorded.classes[1].defects, 5);
    assert!(recorded.classes.iter().all(|c| c.passed));
    assert!(recorded.nonconformance_id.is_empty());
    let passed: FinalInspectionPassed = quality.next().await?;
    assert_eq!(passed.inspection_id, opened.inspection_id);
    assert_eq!(passed.revision, 1);

    // Recording twice is refused and changes nothing.
    let twice = quality
        .client
        .record_inspection_result(result(
            &opened.inspection_id,
            80,
            vec![defect(DefectClass::Critical, 1, "")],
        ))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), tonic::Code::FailedPrecondition, "{twice:?}");
    assert_eq!(
        quality
            .count("SELECT count(*) FROM inspection_defects")
            .await,
        3
    );

    // A request after the pass answers the pass again (the same fact)
    // instead of re-inspecting.
    quality
        .repeat_final("o-pass", 1, &[("shirt", 600), ("cap", 400)])
        .await?;
    assert_eq!(
        quality
            .count("SELECT count(*) FROM inspections WHERE order_id = 'o-pass'")
            .await,
        1
    );

    quality.stop().await
}

#[tokio::test]
async fn a_customer_level_and_aql_draw_the_final_sample() -> anyhow::Result<()> {
    let mut quality = Quality::start().await?;
    // Lot 1000 at general level III: code letter K, 125 units; the
    // customer's major AQL 1.0 replaces the default 2.5 (K: Ac 3 Re 4).
    let command = RequestFinalInspection {
        order_id: "o-strict".to_owned(),
        items: vec![ProductQuantity {
            product: "shirt".to_owned(),
            quantity: 1_000,
        }],
        revision: 1,
        inspection_level: gendan_proto::v1::InspectionLevel::GeneralIii as i32,
        major_aql: Some(1.0),
    };
    quality.command("o-strict", &command).await?;
    let opened: FinalInspectionOpened = quality.next().await?;
    assert_eq!(
        (opened.code_letter.as_str(), opened.sample_size),
        ("K", 125)
    );
    let inspection = quality
        .client
        .get_inspection(GetInspectionRequest {
            inspection_id: opened.inspection_id.clone(),
        })
        .await?
        .into_inner();
    let plans: Vec<(u32, u32, u32)> = inspection
        .classes
        .iter()
        .map(|c| (c.sample_size, c.accept, c.reject))
        .collect();
    assert_eq!(plans, [(125, 0, 1), (125, 3, 4), (125, 10, 11)]);
    quality.stop().await
}

#[tokio::test]
async fn failed_final_inspection_is_answered_by_revision_and_a_new_revision_reinspects()
-> anyhow::Result<()> {
    let mut quality = Quality::start().await?;
    quality
        .client
        .set_inspection_plan(InspectionPlan {
            product: "mug".into(),
            major_aql: Some(1.0),
            in_process_stages: vec!["glazing".into()],
            ..InspectionPlan::default()
        })
        .await?;

    // Lot 500: H, 50 units; major at 1.0 is Ac 1 Re 2, minor at 4.0 Ac 5 Re 6.
    let opened = quality.open_final("o-fail", 1, &[("mug", 500)]).await?;
    assert_eq!(
        (
            opened.code_letter.as_str(),
            opened.sample_size,
            opened.revision
        ),
        ("H", 50, 1)
    );

    let recorded = quality
        .client
        .record_inspection_result(result(
            &opened.inspection_id,
            50,
            vec![
                defect(DefectClass::Major, 2, "crack in glaze"),
                defect(DefectClass::Minor, 1, "glaze run"),
            ],
        ))
        .await?
        .into_inner();
    assert_eq!(recorded.status, InspectionStatus::Failed as i32);
    assert!(!recorded.nonconformance_id.is_empty());
    let failed: FinalInspectionFailed = quality.next().await?;
    assert_eq!(
        (failed.revision, failed.failures, failed.defective_units),
        (1, 1, 3),
        "the minor defect passes its class but is still a unit to rework"
    );
    assert_eq!(failed.inspection_id, opened.inspection_id);
    assert_eq!(failed.nonconformance_id, recorded.nonconformance_id);
    assert!(
        failed.summary.contains("major 2 in 50") && failed.summary.contains("crack in glaze"),
        "{}",
        failed.summary
    );

    let open = quality
        .client
        .list_nonconformances(ListNonconformancesRequest {
            order_id: "o-fail".into(),
            open_only: true,
        })
        .await?
        .into_inner()
        .nonconformances;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].status, NonconformanceStatus::Open as i32);
    assert_eq!(open[0].inspection_id, opened.inspection_id);

    // Revision 1 re-sent after its failure: the failure again, nothing opened.
    quality.repeat_final("o-fail", 1, &[("mug", 500)]).await?;
    let count = "SELECT count(*) FROM inspections WHERE order_id = 'o-fail'";
    assert_eq!(quality.count(count).await, 1);

    // Revision 2 (after rework) opens a new inspection of the lot; re-sent,
    // it is announced again rather than opened twice.
    let reopened = quality.open_final("o-fail", 2, &[("mug", 500)]).await?;
    assert_ne!(reopened.inspection_id, opened.inspection_id);
    assert_eq!(reopened.revision, 2);
    quality.repeat_final("o-fail", 2, &[("mug", 500)]).await?;
    assert_eq!(quality.count(count).await, 2);
    let listed = quality
        .client
        .list_inspections(ListInspectionsRequest {
            order_id: "o-fail".into(),
            open_only: true,
        })
        .await?
        .into_inner()
        .inspections;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].inspection_id.as_str(), listed[0].revision),
        (reopened.inspection_id.as_str(), 2)
    );

    // A late copy of revision 1 still answers revision 1's failure (the
    // same fact again: nothing new).
    quality.repeat_final("o-fail", 1, &[("mug", 500)]).await?;

    // A critical defect fails the re-inspection.
    quality
        .client
        .record_inspection_result(result(
            &reopened.inspection_id,
            50,
            vec![defect(DefectClass::Critical, 1, "sharp chip on rim")],
        ))
        .await?;
    let failed_twice: FinalInspectionFailed = quality.next().await?;
    assert_eq!(
        (
            failed_twice.inspection_id.as_str(),
            failed_twice.revision,
            failed_twice.failures,
            failed_twice.defective_units
        ),
        (reopened.inspection_id.as_str(), 2, 2, 1)
    );
    assert!(
        failed_twice.summary.contains("zero tolerance"),
        "{}",
        failed_twice.summary
    );

    // The re-inspection judged a resubmitted lot, which the switching rules
    // leave out: one rejected mug lot so far, so the next stays normal.
    let next_lot = quality
        .open_final("o-fail-next", 1, &[("mug", 500)])
        .await?;
    assert_eq!(
        (next_lot.severity, next_lot.sample_size),
        (InspectionSeverity::Normal as i32, 50)
    );

    // Closing: a concession needs a note; rework closes; twice is refused.
    let close = |disposition: NonconformanceDisposition, note: &str| CloseNonconformanceRequest {
        nonconformance_id: failed.nonconformance_id.clone(),
        disposition: disposition as i32,
        closed_by: "QA manager".into(),
        note: note.into(),
    };
    let status = quality
        .client
        .close_nonconformance(close(NonconformanceDisposition::Concession, ""))
        .await
        .unwrap_err();
    assert_invalid(&status, "note");
    let closed = quality
        .client
        .close_nonconformance(close(NonconformanceDisposition::Rework, "reglaze 2 mugs"))
        .await?
        .into_inner();
    assert_eq!(closed.status, NonconformanceStatus::Closed as i32);
    assert_eq!(closed.disposition, NonconformanceDisposition::Rework as i32);
    let event: NonconformanceClosed = quality.next().await?;
    assert_eq!(event.disposition, "rework");
    let status = quality
        .client
        .close_nonconformance(close(NonconformanceDisposition::Scrap, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let mut unknown = close(NonconformanceDisposition::Scrap, "");
    unknown.nonconformance_id = uuid::Uuid::now_v7().to_string();
    let status = quality
        .client
        .close_nonconformance(unknown)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    quality.stop().await
}

#[tokio::test]
async fn two_rejected_lots_tighten_the_products_next_inspection() -> anyhow::Result<()> {
    let mut quality = Quality::start().await?;
    quality
        .client
        .set_inspection_plan(InspectionPlan {
            product: "vase".into(),
            major_aql: Some(1.0),
            ..InspectionPlan::default()
        })
        .await?;
    let normal = InspectionSeverity::Normal as i32;
    let tightened = InspectionSeverity::Tightened as i32;

    // Lot 500 is H: normal inspection draws 50 units. Two vase lots rejected.
    for order_id in ["o-sw1", "o-sw2"] {
        let opened = quality.open_final(order_id, 1, &[("vase", 500)]).await?;
        assert_eq!((opened.severity, opened.sample_size), (normal, 50));
        quality
            .client
            .record_inspection_result(result(
                &opened.inspection_id,
                50,
                vec![defect(DefectClass::Major, 2, "hairline crack")],
            ))
            .await?;
        let failed: FinalInspectionFailed = quality.next().await?;
        assert_eq!(failed.inspection_id, opened.inspection_id);
    }

    // 2 of 2 lots rejected: the next vase lot is inspected tightened. Table
    // II-B at H: major 1.0 points down to J (80 units, Ac 1 Re 2; normal is
    // 50 units), minor 4.0 is Ac 3 Re 4 (normal Ac 5 Re 6), critical stays
    // zero tolerance on the code letter's 50.
    let third = quality.open_final("o-sw3", 1, &[("vase", 500)]).await?;
    assert_eq!(
        (
            third.severity,
            third.code_letter.as_str(),
            third.sample_size
        ),
        (tightened, "H", 80)
    );
    let inspection = quality
        .client
        .get_inspection(GetInspectionRequest {
            inspection_id: third.inspection_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(inspection.severity, tightened);
    let plans: Vec<(&str, u32, u32, u32)> = inspection
        .classes
        .iter()
        .map(|c| {
            (
                c.plan_code_letter.as_str(),
                c.sample_size,
                c.accept,
                c.reject,
            )
        })
        .collect();
    assert_eq!(plans, [("H", 50, 0, 1), ("J", 80, 1, 2), ("H", 50, 3, 4)]);

    // Another product's lot stays normal; a lot with a vase in it is
    // inspected at the stricter of its products.
    let cup = quality.open_final("o-sw4", 1, &[("cup", 500)]).await?;
    assert_eq!((cup.severity, cup.sample_size), (normal, 50));
    let mixed = quality
        .open_final("o-sw5", 1, &[("cup", 300), ("vase", 200)])
        .await?;
    assert_eq!((mixed.severity, mixed.sample_size), (tightened, 80));

    // 5 vase lots accepted in a row at tightened return it to normal.
    quality.pass_final(&third).await?;
    quality.pass_final(&mixed).await?;
    for order_id in ["o-sw6", "o-sw7", "o-sw8"] {
        let opened = quality.open_final(order_id, 1, &[("vase", 500)]).await?;
        assert_eq!(opened.severity, tightened, "{order_id}");
        quality.pass_final(&opened).await?;
    }
    let relaxed = quality.open_final("o-sw9", 1, &[("vase", 500)]).await?;
    assert_eq!((relaxed.severity, relaxed.sample_size), (normal, 50));
    // The mixed lot counted as a normal lot of cup: cup was never tightened.
    let cup_again = quality.open_final("o-sw10", 1, &[("cup", 500)]).await?;
    assert_eq!(cup_again.severity, normal);

    quality.stop().await
}

#[tokio::test]
async fn goods_received_opens_an_incoming_inspection() -> anyhow::Result<()> {
    let mut quality = Quality::start().await?;
    quality
        .client
        .set_incoming_inspection_plan(IncomingInspectionPlan {
            material: "twill".into(),
            aql: Some(1.0),
            is_default: false,
        })
        .await?;

    // Not about a receipt: passed over, nothing dead-lettered.
    quality
        .procurement(
            "o-in",
            &MaterialsReady {
                revision: 0,
                order_id: "o-in".into(),
                ready_on: "2026-03-02".into(),
            },
        )
        .await?;
    // 120.5 m is 121 units: F (20); critical zero tolerance on 20, major at
    // 1.0 points up to E (13, Ac 0 Re 1).
    let receipt = GoodsReceived {
        order_id: "o-in".into(),
        purchase_order_id: "po-1".into(),
        material: "twill".into(),
        quantity: 120.5,
        lot: "L-77".into(),
        supplier: "Mill A".into(),
    };
    quality.procurement("o-in", &receipt).await?;
    let opened: IncomingInspectionOpened = quality.next().await?;
    assert_eq!(
        (
            opened.purchase_order_id.as_str(),
            opened.lot.as_str(),
            opened.lot_size,
            opened.code_letter.as_str(),
            opened.sample_size
        ),
        ("po-1", "L-77", 121, "F", 20)
    );
    let inspection = quality
        .client
        .get_inspection(GetInspectionRequest {
            inspection_id: opened.inspection_id.clone(),
        })
        .await?
        .into_inner();
    let major = &inspection.classes[1];
    assert_eq!(
        (
            major.plan_code_letter.as_str(),
            major.sample_size,
            major.accept,
            major.reject
        ),
        ("E", 13, 0, 1)
    );

    // The same receipt announced again (under another id) does not open a
    // second inspection: the opening is announced again as the same fact,
    // which the bus drops.
    let repeat = Outgoing::event("procurement", "o-in", &receipt, &Cause::root("o-in"));
    quality.bus.publish(&repeat).await?;
    gendan_tests::handled(&quality.pool, repeat.event_id()).await?;
    let inspections: i64 = sqlx::query_scalar("SELECT count(*) FROM inspections")
        .fetch_one(&quality.pool)
        .await?;
    assert_eq!(inspections, 1);

    // Minor defects are not part of an incoming plan.
    let status = quality
        .client
        .record_inspection_result(result(
            &opened.inspection_id,
            20,
            vec![defect(DefectClass::Minor, 1, "")],
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "defects[0].defect_class");

    quality
        .client
        .record_inspection_result(result(&opened.inspection_id, 20, vec![]))
        .await?;
    let passed: IncomingInspectionPassed = quality.next().await?;
    assert_eq!(
        (
            passed.order_id.as_str(),
            passed.purchase_order_id.as_str(),
            passed.lot.as_str(),
            passed.inspection_id.as_str()
        ),
        ("o-in", "po-1", "L-77", opened.inspection_id.as_str())
    );

    // A second lot with a defect fails (Re 1 on 13).
    quality
        .procurement(
            "o-in",
            &GoodsReceived {
                lot: "L-78".into(),
                quantity: 60.0,
                ..receipt.clone()
            },
        )
        .await?;
    let second: IncomingInspectionOpened = quality.next().await?;
    assert_eq!(second.lot, "L-78");
    quality
        .client
        .record_inspection_result(result(
            &second.inspection_id,
            second.sample_size,
            vec![defect(DefectClass::Major, 1, "weft skew")],
        ))
        .await?;
    let failed: IncomingInspectionFailed = quality.next().await?;
    assert_eq!(failed.lot, "L-78");
    assert_eq!(failed.purchase_order_id, "po-1");
    assert!(!failed.nonconformance_id.is_empty());
    assert_eq!(
        quality
            .count("SELECT count(*) FROM nonconformances WHERE status = 'open'")
            .await,
        1
    );

    let mut dead = SubjectReader::open(
        &quality.nats.url,
        streams::DEAD_LETTERS,
        &subjects::dead_letter(gendan_quality::PROCUREMENT_CONSUMER),
    )
    .await?;
    assert!(dead.next(Duration::from_millis(500)).await?.is_none());

    quality.stop().await
}

fn progressed(order_id: &str, product: &str, stage: &str, good: u32) -> WorkOrderProgressed {
    WorkOrderProgressed {
        order_id: order_id.to_owned(),
        work_order_id: format!("wo-{order_id}"),
        product: product.to_owned(),
        stage: stage.to_owned(),
        good_quantity: good,
        scrap_quantity: 0,
        progress: 0.3,
        projected_end: "2026-04-01".to_owned(),
        stages: Vec::new(),
    }
}

#[tokio::test]
async fn planned_stage_progress_opens_one_in_process_inspection() -> anyhow::Result<()> {
    let mut quality = Quality::start().await?;
    quality
        .client
        .set_inspection_plan(InspectionPlan {
            product: "shirt".into(),
            critical_aql: Some(0.0),
            major_aql: Some(2.5),
            minor_aql: Some(4.0),
            in_process_stages: vec!["sewing".into()],
            is_default: false,
        })
        .await?;

    // A stage outside the plan, and the planned stage before any good unit:
    // nothing to inspect.
    quality
        .production("o-ip", &progressed("o-ip", "shirt", "cutting", 150))
        .await?;
    quality
        .production("o-ip", &progressed("o-ip", "shirt", "sewing", 0))
        .await?;
    // The first report with good units opens the inspection; the next
    // report of the stage (more units) opens nothing.
    quality
        .production("o-ip", &progressed("o-ip", "shirt", "sewing", 120))
        .await?;
    quality
        .production("o-ip", &progressed("o-ip", "shirt", "sewing", 200))
        .await?;
    // Another order's stage, published last: once its inspection is
    // announced, every report above has been handled.
    quality
        .production("o-ip2", &progressed("o-ip2", "shirt", "sewing", 10))
        .await?;

    // 120 units: F, n 20.
    let opened: InProcessInspectionOpened = quality.next().await?;
    assert_eq!(
        (
            opened.order_id.as_str(),
            opened.product.as_str(),
            opened.stage.as_str(),
            opened.lot_size,
            opened.code_letter.as_str(),
            opened.sample_size
        ),
        ("o-ip", "shirt", "sewing", 120, "F", 20)
    );
    let other: InProcessInspectionOpened = quality.next().await?;
    assert_eq!((other.order_id.as_str(), other.lot_size), ("o-ip2", 10));
    assert_eq!(
        quality
            .count(
                "SELECT count(*) FROM inspections WHERE kind = 'in_process' AND order_id = 'o-ip'"
            )
            .await,
        1
    );
    assert_eq!(
        quality
            .count("SELECT count(*) FROM inspections WHERE kind = 'in_process'")
            .await,
        2
    );

    let inspection = quality
        .client
        .get_inspection(GetInspectionRequest {
            inspection_id: opened.inspection_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(inspection.kind, InspectionKind::InProcess as i32);
    assert_eq!(inspection.stage, "sewing");
    assert_eq!(inspection.status, InspectionStatus::Open as i32);
    assert_eq!(
        inspection
            .items
            .iter()
            .map(|item| (item.product.as_str(), item.quantity))
            .collect::<Vec<_>>(),
        [("shirt", 120)]
    );
    assert_eq!(inspection.classes.len(), 3);

    // A critical defect fails the stage's lot: a nonconformance is opened.
    quality
        .client
        .record_inspection_result(result(
            &opened.inspection_id,
            20,
            vec![defect(DefectClass::Critical, 1, "needle fragment")],
        ))
        .await?;
    let failed: InProcessInspectionFailed = quality.next().await?;
    assert_eq!(
        (
            failed.order_id.as_str(),
            failed.inspection_id.as_str(),
            failed.product.as_str(),
            failed.stage.as_str()
        ),
        ("o-ip", opened.inspection_id.as_str(), "shirt", "sewing")
    );
    assert!(
        failed.summary.contains("needle fragment"),
        "{}",
        failed.summary
    );
    let nonconformances = quality
        .client
        .list_nonconformances(ListNonconformancesRequest {
            order_id: "o-ip".into(),
            open_only: true,
        })
        .await?
        .into_inner()
        .nonconformances;
    assert_eq!(nonconformances.len(), 1);
    assert_eq!(
        nonconformances[0].nonconformance_id,
        failed.nonconformance_id
    );
    assert_eq!(nonconformances[0].kind, InspectionKind::InProcess as i32);

    // The stage reported again after the failure opens nothing new.
    quality
        .production("o-ip", &progressed("o-ip", "shirt", "sewing", 260))
        .await?;
    quality
        .production("o-ip3", &progressed("o-ip3", "shirt", "sewing", 5))
        .await?;
    let third: InProcessInspectionOpened = quality.next().await?;
    assert_eq!(third.order_id, "o-ip3");
    assert_eq!(
        quality
            .count(
                "SELECT count(*) FROM inspections WHERE kind = 'in_process' AND order_id = 'o-ip'"
            )
            .await,
        1
    );

    // A clean sample passes the other order's stage.
    quality
        .client
        .record_inspection_result(result(&other.inspection_id, other.sample_size, vec![]))
        .await?;
    let passed: InProcessInspectionPassed = quality.next().await?;
    assert_eq!(
        (
            passed.order_id.as_str(),
            passed.inspection_id.as_str(),
            passed.stage.as_str()
        ),
        ("o-ip2", other.inspection_id.as_str(), "sewing")
    );
    assert_eq!(
        quality
            .count("SELECT count(*) FROM inspections WHERE kind = 'in_process'")
            .await,
        3
    );

    let mut dead = SubjectReader::open(
        &quality.nats.url,
        streams::DEAD_LETTERS,
        &subjects::dead_letter(gendan_quality::PRODUCTION_CONSUMER),
    )
    .await?;
    assert!(dead.next(Duration::from_millis(500)).await?.is_none());

    quality.stop().await
}

#[tokio::test]
async fn invalid_requests_name_the_field_and_write_nothing() -> anyhow::Result<()> {
    let mut quality = Quality::start().await?;

    let plan = quality
        .client
        .get_sampling_plan(GetSamplingPlanRequest {
            lot_size: 1_000,
            aql: 2.5,
        })
        .await?
        .into_inner();
    assert_eq!(
        (
            plan.code_letter.as_str(),
            plan.sample_size,
            plan.accept,
            plan.reject
        ),
        ("J", 80, 5, 6)
    );
    let arrow = quality
        .client
        .get_sampling_plan(GetSamplingPlanRequest {
            lot_size: 10,
            aql: 0.65,
        })
        .await?
        .into_inner();
    assert!(arrow.full_inspection);
    assert_eq!(
        (arrow.plan_code_letter.as_str(), arrow.sample_size),
        ("F", 10)
    );
    let status = quality
        .client
        .get_sampling_plan(GetSamplingPlanRequest {
            lot_size: 0,
            aql: 2.5,
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "lot_size");
    let status = quality
        .client
        .get_sampling_plan(GetSamplingPlanRequest {
            lot_size: 100,
            aql: 3.0,
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "aql");

    let status = quality
        .client
        .set_inspection_plan(InspectionPlan {
            product: "shirt".into(),
            major_aql: Some(3.0),
            ..InspectionPlan::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "major_aql");
    let stored = quality
        .client
        .get_inspection_plan(GetInspectionPlanRequest {
            product: "shirt".into(),
        })
        .await?
        .into_inner();
    assert!(stored.is_default);
    assert_eq!(
        (stored.critical_aql, stored.major_aql, stored.minor_aql),
        (Some(0.0), Some(2.5), Some(4.0))
    );
    let status = quality
        .client
        .set_incoming_inspection_plan(IncomingInspectionPlan {
            material: " ".into(),
            aql: Some(2.5),
            is_default: false,
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "material");

    quality.request_final("o-bad", 1, &[("shirt", 200)]).await?;
    let opened: FinalInspectionOpened = quality.next().await?;
    assert_eq!((opened.code_letter.as_str(), opened.sample_size), ("G", 32));

    let status = quality
        .client
        .record_inspection_result(result("not-an-id", 32, vec![]))
        .await
        .unwrap_err();
    assert_invalid(&status, "inspection_id");
    let status = quality
        .client
        .record_inspection_result(result(&uuid::Uuid::now_v7().to_string(), 32, vec![]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let status = quality
        .client
        .record_inspection_result(result(&opened.inspection_id, 20, vec![]))
        .await
        .unwrap_err();
    assert_invalid(&status, "sample_inspected");
    let status = quality
        .client
        .record_inspection_result(result(
            &opened.inspection_id,
            32,
            vec![DefectCount {
                defect_class: DefectClass::Major as i32,
                count: 0,
                description: String::new(),
            }],
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "defects[0].count");
    let status = quality
        .client
        .record_inspection_result(result(
            &opened.inspection_id,
            32,
            vec![defect(DefectClass::Minor, 40, "")],
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "defects[0].count");
    let mut anonymous = result(&opened.inspection_id, 32, vec![]);
    anonymous.inspector = String::new();
    let status = quality
        .client
        .record_inspection_result(anonymous)
        .await
        .unwrap_err();
    assert_invalid(&status, "inspector");

    // None of that touched the inspection.
    let inspection = quality
        .client
        .get_inspection(GetInspectionRequest {
            inspection_id: opened.inspection_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(inspection.status, InspectionStatus::Open as i32);
    assert_eq!(
        quality
            .count("SELECT count(*) FROM inspection_defects")
            .await,
        0
    );
    assert_eq!(
        quality.count("SELECT count(*) FROM nonconformances").await,
        0
    );

    let status = quality
        .client
        .close_nonconformance(CloseNonconformanceRequest {
            nonconformance_id: uuid::Uuid::now_v7().to_string(),
            disposition: 0,
            closed_by: "QA".into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "disposition");

    // A command without items can never be handled: dead letter with the reason.
    let mut dead = SubjectReader::open(
        &quality.nats.url,
        streams::DEAD_LETTERS,
        &subjects::dead_letter(gendan_quality::COMMANDS_CONSUMER),
    )
    .await?;
    quality.request_final("o-empty", 1, &[]).await?;
    let letter = dead
        .next(WAIT)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no dead letter"))?;
    let reason = letter.header("Gendan-Dlq-Reason").unwrap_or_default();
    assert!(reason.contains("items"), "{reason}");

    quality.stop().await
}

#[tokio::test]
async fn an_overdue_wait_gets_the_pass_again_or_the_inspections_status() -> anyhow::Result<()> {
    let mut quality = Quality::start().await?;
    let order = "o-restated";
    let restate = |revision| RestateFact {
        order_id: order.to_owned(),
        step: "final_inspection_passed".to_owned(),
        awaited: FinalInspectionPassed::TYPE_NAME.to_owned(),
        revision,
    };

    // Open, not yet recorded: where it stands.
    let opened = quality.open_final(order, 1, &[("shirt", 500)]).await?;
    quality.command(order, &restate(1)).await?;
    let status: StatusReported = quality.next().await?;
    assert_eq!(
        (status.order_id.as_str(), status.step.as_str()),
        (order, "final_inspection_passed")
    );
    assert!(
        status.status.starts_with(&format!(
            "final inspection {} (revision 1) opened on ",
            opened.inspection_id
        )) && status.status.ends_with("waiting for QA's result"),
        "{}",
        status.status
    );

    // Passed: the pass is the fact of the inspection's result.
    quality
        .client
        .record_inspection_result(result(&opened.inspection_id, opened.sample_size, vec![]))
        .await?;
    let seen = quality
        .events
        .next_of_type(FinalInspectionPassed::TYPE_NAME, WAIT)
        .await?;
    // The key the restatement announces it under: the same event id, so the
    // bus and every consumer drop the repeat.
    let key = format!("inspection:{}:result", opened.inspection_id);
    assert_eq!(
        seen.envelope()?.event_id,
        gendan_messaging::fact_id("quality", FinalInspectionPassed::TYPE_NAME, order, &key)
            .to_string()
    );
    for revision in [1, 0] {
        gendan_tests::repeat_command(
            &quality.bus,
            &quality.pool,
            "quality",
            order,
            &restate(revision),
        )
        .await?;
    }
    gendan_tests::eventually(WAIT, "the restatements relayed", || async {
        (quality.count("SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await?;
    let after = quality.events.next(Duration::from_millis(700)).await?;
    assert!(after.is_none(), "{:?}", after.map(|seen| seen.type_name()));

    // A revision not requested.
    quality.command(order, &restate(2)).await?;
    let status: StatusReported = quality.next().await?;
    assert_eq!(
        status.status,
        "no final inspection requested for revision 2"
    );

    // A fact quality does not announce: dead-lettered, the field named.
    let mut dead = SubjectReader::open(
        &quality.nats.url,
        streams::DEAD_LETTERS,
        &subjects::dead_letter(gendan_quality::COMMANDS_CONSUMER),
    )
    .await?;
    let mut shipped = restate(1);
    shipped.awaited = "gendan.v1.Shipped".to_owned();
    quality.command(order, &shipped).await?;
    let letter = dead
        .next(WAIT)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no dead letter"))?;
    let reason = letter.header("Gendan-Dlq-Reason").unwrap_or_default();
    assert!(reason.contains("awaited"), "{reason}");

    quality.stop().await
}
