//! The `gendan.v1.ProductionService` gRPC API.
//!
//! Each call validates its request completely ([`validate`]) before touching
//! the database, then reads or writes through [`catalog`], [`planning`] and
//! [`work_orders`]. Errors become statuses only through
//! [`gendan_grpc::into_status`], so the code of every failure is decided by
//! `impl ServiceErrorCode for Error`.

use chrono::Utc;
use gendan_grpc::{FieldError, into_status};
use gendan_proto::date_to_string;
use gendan_proto::v1::production_service_server::ProductionService;
use gendan_proto::v1::{
    CapacityCheck, CheckCapacityRequest, GetRoutingRequest, GetWorkOrderRequest,
    ListWorkCentresRequest, ListWorkCentresResponse, Routing, RoutingStage, StagePlan, WorkCentre,
    WorkOrder,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::catalog::{self, WorkCentreDef};
use crate::schedule::Schedule;
use crate::{Error, Result, planning, validate, work_orders};

#[derive(Debug, Clone)]
pub struct ProductionApi {
    pool: PgPool,
}

impl ProductionApi {
    pub fn new(pool: PgPool) -> Self {
        ProductionApi { pool }
    }

    async fn store_work_centre(&self, request: &WorkCentre) -> Result<WorkCentre> {
        let centre = validate::work_centre(request)?;
        let mut conn = self.pool.acquire().await?;
        catalog::upsert_work_centre(&mut conn, &centre).await?;
        // Read back: the answer shows the centre's down state, which the
        // request cannot set.
        let stored = catalog::work_centre(&mut conn, &centre.code).await?;
        Ok(work_centre_proto(stored.as_ref().unwrap_or(&centre)))
    }

    async fn replace_routing(&self, request: &Routing) -> Result<Routing> {
        let (product, stages) = validate::routing(request)?;
        let mut tx = self.pool.begin().await?;
        let codes: Vec<String> = stages.iter().map(|s| s.work_centre.clone()).collect();
        let known = catalog::existing_work_centres(&mut tx, &codes).await?;
        if let Some((i, stage)) = stages
            .iter()
            .enumerate()
            .find(|(_, stage)| !known.contains(&stage.work_centre))
        {
            return Err(FieldError::new(
                format!("stages[{i}].work_centre"),
                format!("unknown work centre {:?}", stage.work_centre),
            )
            .into());
        }
        catalog::set_routing(&mut tx, &product, &stages).await?;
        tx.commit().await?;
        Ok(routing_proto(product, &stages))
    }

    async fn find_routing(&self, request: &GetRoutingRequest) -> Result<Routing> {
        let product = request.product.trim();
        if product.is_empty() {
            return Err(FieldError::new("product", "must not be empty").into());
        }
        let mut conn = self.pool.acquire().await?;
        let stages = catalog::routing(&mut conn, product)
            .await?
            .ok_or_else(|| Error::NoRouting(product.to_owned()))?;
        Ok(routing_proto(product.to_owned(), &stages))
    }

    async fn plan_capacity(&self, request: &CheckCapacityRequest) -> Result<CapacityCheck> {
        let items = validate::items(&request.items, "items")?;
        let today = Utc::now().date_naive();
        let earliest_start = validate::date_or(&request.earliest_start, "earliest_start", today)?;
        // A read-only transaction: one consistent snapshot of routings,
        // calendars and bookings.
        let mut tx = self.pool.begin().await?;
        let schedule = planning::schedule_items(&mut tx, &items, earliest_start).await?;
        tx.rollback().await?;
        Ok(capacity_check(&schedule))
    }

    async fn find_work_order(&self, request: &GetWorkOrderRequest) -> Result<WorkOrder> {
        let order_id = request.order_id.trim();
        if order_id.is_empty() {
            return Err(FieldError::new("order_id", "must not be empty").into());
        }
        // The work order and its stages from one snapshot, so a reader
        // never sees a stage completed under a work order still running.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let all = work_orders::store::all_of(&mut tx, order_id, false).await?;
        tx.commit().await?;
        // The order's current production run; reworks are followed through
        // their events.
        let work_order = work_orders::current(&all, work_orders::KIND_PRODUCTION)
            .ok_or_else(|| Error::WorkOrderNotFound(order_id.to_owned()))?;
        Ok(work_orders::to_proto(work_order))
    }
}

fn work_centre_proto(centre: &WorkCentreDef) -> WorkCentre {
    WorkCentre {
        code: centre.code.clone(),
        name: centre.name.clone(),
        hours_per_day: centre.calendar.hours_per_day,
        working_weekdays: centre.calendar.working_weekdays.clone(),
        closed_dates: centre
            .calendar
            .closed_dates
            .iter()
            .map(|date| date_to_string(*date))
            .collect(),
        typical_repair_hours: centre.typical_repair_hours,
        down: centre.down,
    }
}

fn routing_proto(product: String, stages: &[crate::schedule::StageSpec]) -> Routing {
    Routing {
        product,
        stages: stages
            .iter()
            .map(|stage| RoutingStage {
                stage: stage.stage.clone(),
                work_centre: stage.work_centre.clone(),
                hours_per_unit: stage.hours_per_unit,
                setup_hours: stage.setup_hours,
            })
            .collect(),
    }
}

/// The wire form of a schedule (shared with the command handler).
pub fn capacity_check(schedule: &Schedule) -> CapacityCheck {
    CapacityCheck {
        earliest_completion: date_to_string(schedule.earliest_completion),
        stages: schedule
            .stages
            .iter()
            .map(|stage| StagePlan {
                product: stage.product.clone(),
                stage: stage.stage.clone(),
                work_centre: stage.work_centre.clone(),
                quantity: stage.quantity,
                hours: stage.hours,
                planned_start: date_to_string(stage.start),
                planned_end: date_to_string(stage.end),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl ProductionService for ProductionApi {
    #[tracing::instrument(skip_all, fields(code = %request.get_ref().code))]
    async fn upsert_work_centre(
        &self,
        request: Request<WorkCentre>,
    ) -> Result<Response<WorkCentre>, Status> {
        self.store_work_centre(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn list_work_centres(
        &self,
        _request: Request<ListWorkCentresRequest>,
    ) -> Result<Response<ListWorkCentresResponse>, Status> {
        let list = async {
            let mut conn = self.pool.acquire().await?;
            let centres = catalog::work_centres(&mut conn).await?;
            Ok::<_, Error>(ListWorkCentresResponse {
                work_centres: centres.iter().map(work_centre_proto).collect(),
            })
        };
        list.await.map(Response::new).map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().product))]
    async fn set_routing(&self, request: Request<Routing>) -> Result<Response<Routing>, Status> {
        self.replace_routing(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().product))]
    async fn get_routing(
        &self,
        request: Request<GetRoutingRequest>,
    ) -> Result<Response<Routing>, Status> {
        self.find_routing(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn check_capacity(
        &self,
        request: Request<CheckCapacityRequest>,
    ) -> Result<Response<CapacityCheck>, Status> {
        self.plan_capacity(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_work_order(
        &self,
        request: Request<GetWorkOrderRequest>,
    ) -> Result<Response<WorkOrder>, Status> {
        self.find_work_order(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }
}
