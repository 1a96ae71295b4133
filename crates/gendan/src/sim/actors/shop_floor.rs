//! The factory floor: the MES working through a work order (or a rework
//! or remake plan) stage by stage, and the QA inspector recording
//! inspections. Both answer gendan's events as the real systems and people
//! would, through MES events and the quality gRPC API.

use anyhow::{Context, anyhow};
use gendan_messaging::subjects;
use gendan_proto::timestamp_from;
use gendan_proto::v1;
use tonic::Code;

use super::{World, bump, retry};

/// A stage as the MES works it, from a work order or a rework plan.
#[derive(Debug, Clone)]
pub(super) struct MesStage {
    product: String,
    stage: String,
    quantity: u32,
}

impl From<&v1::StageProgress> for MesStage {
    fn from(stage: &v1::StageProgress) -> Self {
        MesStage {
            product: stage.product.clone(),
            stage: stage.stage.clone(),
            quantity: stage.planned_quantity,
        }
    }
}

impl From<&v1::StagePlan> for MesStage {
    fn from(stage: &v1::StagePlan) -> Self {
        MesStage {
            product: stage.product.clone(),
            stage: stage.stage.clone(),
            quantity: stage.quantity,
        }
    }
}

impl World {
    // ---- MES ----

    /// The factory works through the work order: every stage started,
    /// reported (planned quantity good, 0–2% scrap) and completed, one
    /// simulated day per stage.
    pub(super) async fn mes(&self, order_id: String) -> anyhow::Result<()> {
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
        // The seeded mix: one machine breaks down once, as the first order
        // whose work on it is due within the two days of the repair starts
        // production (work planned later is not hit), and is repaired two
        // days later.
        let due_soon = |stage: &&v1::StageProgress| {
            gendan_proto::date_from_str(&stage.planned_start).is_some_and(|start| {
                start <= chrono::Utc::now().date_naive() + chrono::Days::new(1)
            })
        };
        if let Some(centre) = work_order
            .stages
            .first()
            .filter(due_soon)
            .map(|s| s.work_centre.clone())
            && self.mix.breaks_down_once()
        {
            self.breakdown(&order_id, &centre).await?;
        }
        let stages = work_order
            .stages
            .iter()
            .filter(|stage| stage.status != "completed")
            .map(MesStage::from)
            .collect();
        self.report_stages(order_id, stages).await
    }

    /// The MES reports `centre` down (a two-day repair expected), and up
    /// again two simulated days later.
    async fn breakdown(&self, order_id: &str, centre: &str) -> anyhow::Result<()> {
        let source = "mes:sim";
        // Stamped with the factory's real clock, not the order's simulated
        // one: the work the breakdown hits is planned on real dates.
        let down_at = chrono::Utc::now();
        let down = v1::MesEquipmentDown {
            work_centre: centre.to_owned(),
            reason: "motor failure (simulated)".to_owned(),
            at: Some(timestamp_from(down_at)),
            expected_hours: 48.0,
        };
        self.publish(&subjects::mes("equipment_down"), source, "", &down)
            .await?;
        self.pause_on(order_id, 2.0).await;
        let up = v1::MesEquipmentUp {
            work_centre: centre.to_owned(),
            at: Some(timestamp_from(down_at + chrono::Duration::hours(48))),
        };
        self.publish(&subjects::mes("equipment_up"), source, "", &up)
            .await
    }

    /// Reports `stages` in order as the MES does: started, a day later the
    /// quantity (all good but 0–2% scrap) and completed.
    pub(super) async fn report_stages(
        &self,
        order_id: String,
        stages: Vec<MesStage>,
    ) -> anyhow::Result<()> {
        let mut rng = self.rng(&order_id);
        let source = "mes:sim";
        for stage in &stages {
            let started = v1::MesStageStarted {
                order_id: order_id.clone(),
                product: stage.product.clone(),
                stage: stage.stage.clone(),
                at: Some(timestamp_from(self.now(&order_id))),
            };
            self.publish(&subjects::mes("stage_started"), source, &order_id, &started)
                .await?;
            self.pause_on(&order_id, 1.0).await;
            let scrap = (u64::from(stage.quantity) * rng.below(3) / 100) as u32;
            let reported = v1::MesQuantityReported {
                order_id: order_id.clone(),
                product: stage.product.clone(),
                stage: stage.stage.clone(),
                good: stage.quantity,
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

    // ---- QA ----

    /// The inspector draws the plan's sample and finds nothing wrong.
    pub(super) async fn inspect(
        &self,
        inspection_id: String,
        sample_size: u32,
    ) -> anyhow::Result<()> {
        self.inspect_final(inspection_id, sample_size, false).await
    }

    /// The inspector draws the plan's sample; a `defective` lot has a major
    /// defect in every unit drawn (no plan accepts that).
    pub(super) async fn inspect_final(
        &self,
        inspection_id: String,
        sample_size: u32,
        defective: bool,
    ) -> anyhow::Result<()> {
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
            defects: if defective {
                vec![v1::DefectCount {
                    defect_class: v1::DefectClass::Major as i32,
                    count: sample,
                    description: "seam slippage (simulated)".to_owned(),
                }]
            } else {
                Vec::new()
            },
        };
        let recorded = retry(&[], || {
            let mut client = quality.clone();
            let request = request.clone();
            async move { client.record_inspection_result(request).await }
        })
        .await;
        match recorded {
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
}
