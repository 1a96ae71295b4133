//! The `gendan.v1.QualityService` gRPC API, used by QA's programs.
//!
//! Each call validates its request completely ([`validate`]) before touching
//! the database; checks that need stored data run inside the transaction
//! before its first write. Errors become statuses only through
//! [`gendan_grpc::into_status`], so the code of every failure is decided by
//! `impl ServiceErrorCode for Error`.
//!
//! A recorded result is announced under the order's trace: when QA's call
//! carries no `traceparent`, the events join the trace of the message that
//! opened the inspection.

use gendan_grpc::into_status;
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::v1::quality_service_server::QualityService;
use gendan_proto::v1::{
    CloseNonconformanceRequest, GetIncomingInspectionPlanRequest, GetInspectionPlanRequest,
    GetInspectionRequest, GetSamplingPlanRequest, IncomingInspectionPlan, Inspection,
    InspectionPlan, ListInspectionsRequest, ListInspectionsResponse, ListNonconformancesRequest,
    ListNonconformancesResponse, Nonconformance, NonconformanceClosed,
    RecordInspectionResultRequest, SamplingPlan,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::inspections::{self, Inspection as Stored};
use crate::plans::{self, ProductPlan};
use crate::validate::{self, Findings};
use crate::{Error, Result, SERVICE, sampling};

/// The QualityService implementation; cheap to clone.
#[derive(Debug, Clone)]
pub struct QualityApi {
    pool: PgPool,
}

/// An optional filter: "" means any, otherwise a bounded text.
fn filter(value: &str, field: &str) -> Result<String> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    Ok(validate::required_text(value, field)?)
}

impl QualityApi {
    pub fn new(pool: PgPool) -> Self {
        QualityApi { pool }
    }

    async fn store_plan(&self, request: &InspectionPlan) -> Result<InspectionPlan> {
        let plan = validate::product_plan(request)?;
        let mut conn = self.pool.acquire().await?;
        plans::set_product_plan(&mut conn, &plan).await?;
        Ok(plans::plan_proto(&plan, false))
    }

    async fn find_plan(&self, request: &GetInspectionPlanRequest) -> Result<InspectionPlan> {
        let product = validate::required_text(&request.product, "product")?;
        let mut conn = self.pool.acquire().await?;
        Ok(match plans::product_plan(&mut conn, &product).await? {
            Some(plan) => plans::plan_proto(&plan, false),
            None => plans::plan_proto(
                &ProductPlan {
                    product,
                    tolerances: plans::default_tolerances(),
                    in_process_stages: Vec::new(),
                },
                true,
            ),
        })
    }

    async fn store_incoming(
        &self,
        request: &IncomingInspectionPlan,
    ) -> Result<IncomingInspectionPlan> {
        let (material, tolerance) = validate::incoming_plan(request)?;
        let mut conn = self.pool.acquire().await?;
        plans::set_incoming_tolerance(&mut conn, &material, tolerance).await?;
        Ok(plans::incoming_proto(&material, tolerance, false))
    }

    async fn find_incoming(
        &self,
        request: &GetIncomingInspectionPlanRequest,
    ) -> Result<IncomingInspectionPlan> {
        let material = validate::required_text(&request.material, "material")?;
        let mut conn = self.pool.acquire().await?;
        let (tolerance, is_default) = plans::incoming_tolerance(&mut conn, &material).await?;
        Ok(plans::incoming_proto(&material, tolerance, is_default))
    }

    fn sampling_plan(request: &GetSamplingPlanRequest) -> Result<SamplingPlan> {
        let (lot_size, tolerance) = validate::sampling_request(request)?;
        let plan = sampling::plan(lot_size, tolerance)
            .ok_or_else(|| gendan_grpc::FieldError::new("lot_size", "must be greater than 0"))?;
        Ok(SamplingPlan {
            lot_size,
            aql: tolerance.percent(),
            code_letter: plan.code_letter.to_string(),
            plan_code_letter: plan.plan_code_letter.to_string(),
            sample_size: plan.sample_size,
            accept: plan.accept,
            reject: plan.reject,
            full_inspection: plan.full_inspection,
        })
    }

    #[tracing::instrument(skip_all, fields(inspection_id = %request.inspection_id), err(level = "debug"))]
    async fn record(
        &self,
        request: &RecordInspectionResultRequest,
        client_traced: bool,
    ) -> Result<Inspection> {
        let findings = validate::findings(request)?;
        let mut tx = self.pool.begin().await?;
        let inspection = inspections::find(&mut tx, findings.inspection_id, true)
            .await?
            .ok_or_else(|| Error::InspectionNotFound(findings.inspection_id.to_string()))?;
        if !inspection.is_open() {
            return Err(Error::AlreadyRecorded {
                inspection_id: inspection.inspection_id.to_string(),
                status: inspection.status.clone(),
            });
        }
        inspections::check_findings(&inspection, &findings)?;
        let recorded = self
            .record_in_trace(&mut tx, &inspection, &findings, client_traced)
            .await?;
        tx.commit().await?;
        Ok(inspections::to_proto(&recorded))
    }

    /// Records under the trace of the opening message unless the client sent its own.
    async fn record_in_trace(
        &self,
        conn: &mut sqlx::PgConnection,
        inspection: &Stored,
        findings: &Findings,
        client_traced: bool,
    ) -> Result<Stored> {
        use tracing::Instrument as _;
        let span = tracing::info_span!("inspection.record", order_id = %inspection.order_id);
        if !client_traced && let Some(traceparent) = &inspection.traceparent {
            gendan_telemetry::set_parent_from_traceparent(&span, traceparent);
        }
        inspections::record(conn, inspection, findings)
            .instrument(span)
            .await
    }

    async fn find_inspection(&self, request: &GetInspectionRequest) -> Result<Inspection> {
        let id = validate::id(&request.inspection_id, "inspection_id")?;
        let mut conn = self.pool.acquire().await?;
        let inspection = inspections::find(&mut conn, id, false)
            .await?
            .ok_or_else(|| Error::InspectionNotFound(id.to_string()))?;
        Ok(inspections::to_proto(&inspection))
    }

    async fn list_inspections_of(
        &self,
        request: &ListInspectionsRequest,
    ) -> Result<ListInspectionsResponse> {
        let order_id = filter(&request.order_id, "order_id")?;
        let mut conn = self.pool.acquire().await?;
        let rows = inspections::list(&mut conn, &order_id, request.open_only).await?;
        Ok(ListInspectionsResponse {
            inspections: rows.iter().map(inspections::to_proto).collect(),
        })
    }

    async fn list_nonconformances_of(
        &self,
        request: &ListNonconformancesRequest,
    ) -> Result<ListNonconformancesResponse> {
        let order_id = filter(&request.order_id, "order_id")?;
        let mut conn = self.pool.acquire().await?;
        let rows =
            inspections::list_nonconformances(&mut conn, &order_id, request.open_only).await?;
        Ok(ListNonconformancesResponse {
            nonconformances: rows.iter().map(inspections::nonconformance_proto).collect(),
        })
    }

    #[tracing::instrument(skip_all, fields(nonconformance_id = %request.nonconformance_id), err(level = "debug"))]
    async fn close(&self, request: &CloseNonconformanceRequest) -> Result<Nonconformance> {
        let closing = validate::closing(request)?;
        let mut tx = self.pool.begin().await?;
        let row = inspections::find_nonconformance(&mut tx, closing.nonconformance_id, true)
            .await?
            .ok_or_else(|| Error::NonconformanceNotFound(closing.nonconformance_id.to_string()))?;
        if row.status != "open" {
            return Err(Error::AlreadyClosed(row.nonconformance_id.to_string()));
        }
        inspections::close_nonconformance(
            &mut tx,
            closing.nonconformance_id,
            closing.disposition,
            &closing.closed_by,
            &closing.note,
        )
        .await?;
        let closed = NonconformanceClosed {
            order_id: row.order_id.clone(),
            nonconformance_id: row.nonconformance_id.to_string(),
            inspection_id: row.inspection_id.to_string(),
            disposition: closing.disposition.code().to_owned(),
            closed_by: closing.closed_by.clone(),
            note: closing.note.clone(),
        };
        let correlation = if row.order_id.is_empty() {
            row.nonconformance_id.to_string()
        } else {
            row.order_id.clone()
        };
        let event = Outgoing::event(SERVICE, &row.order_id, &closed, &Cause::root(correlation));
        outbox::write(&mut tx, &[event]).await?;
        let updated = inspections::find_nonconformance(&mut tx, closing.nonconformance_id, false)
            .await?
            .ok_or_else(|| Error::NonconformanceNotFound(closing.nonconformance_id.to_string()))?;
        tx.commit().await?;
        tracing::info!(
            disposition = closing.disposition.code(),
            "nonconformance closed"
        );
        Ok(inspections::nonconformance_proto(&updated))
    }
}

#[tonic::async_trait]
impl QualityService for QualityApi {
    #[tracing::instrument(skip_all, fields(product = %request.get_ref().product))]
    async fn set_inspection_plan(
        &self,
        request: Request<InspectionPlan>,
    ) -> Result<Response<InspectionPlan>, Status> {
        self.store_plan(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().product))]
    async fn get_inspection_plan(
        &self,
        request: Request<GetInspectionPlanRequest>,
    ) -> Result<Response<InspectionPlan>, Status> {
        self.find_plan(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(material = %request.get_ref().material))]
    async fn set_incoming_inspection_plan(
        &self,
        request: Request<IncomingInspectionPlan>,
    ) -> Result<Response<IncomingInspectionPlan>, Status> {
        self.store_incoming(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(material = %request.get_ref().material))]
    async fn get_incoming_inspection_plan(
        &self,
        request: Request<GetIncomingInspectionPlanRequest>,
    ) -> Result<Response<IncomingInspectionPlan>, Status> {
        self.find_incoming(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(lot_size = request.get_ref().lot_size, aql = request.get_ref().aql))]
    async fn get_sampling_plan(
        &self,
        request: Request<GetSamplingPlanRequest>,
    ) -> Result<Response<SamplingPlan>, Status> {
        Self::sampling_plan(request.get_ref())
            .map(Response::new)
            .map_err(into_status)
    }

    async fn record_inspection_result(
        &self,
        request: Request<RecordInspectionResultRequest>,
    ) -> Result<Response<Inspection>, Status> {
        let client_traced = request.metadata().contains_key("traceparent");
        self.record(request.get_ref(), client_traced)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(inspection_id = %request.get_ref().inspection_id))]
    async fn get_inspection(
        &self,
        request: Request<GetInspectionRequest>,
    ) -> Result<Response<Inspection>, Status> {
        self.find_inspection(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn list_inspections(
        &self,
        request: Request<ListInspectionsRequest>,
    ) -> Result<Response<ListInspectionsResponse>, Status> {
        self.list_inspections_of(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn list_nonconformances(
        &self,
        request: Request<ListNonconformancesRequest>,
    ) -> Result<Response<ListNonconformancesResponse>, Status> {
        self.list_nonconformances_of(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn close_nonconformance(
        &self,
        request: Request<CloseNonconformanceRequest>,
    ) -> Result<Response<Nonconformance>, Status> {
        self.close(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }
}
