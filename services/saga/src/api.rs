//! gRPC `SagaService`: read a saga, list stalled ones, and the operator's
//! retry / skip of a stalled step.

use chrono::{DateTime, Utc};
use gendan_proto::v1;
use gendan_proto::v1::saga_service_server::SagaService;
use gendan_proto::{date_to_string, timestamp_from};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::engine::Engine;
use crate::state::SagaState;
use crate::{Error, validate_order_id};

/// at, step, action, detail, trace id.
type LogRow = (DateTime<Utc>, String, String, String, Option<String>);

pub struct SagaApi {
    pool: PgPool,
    engine: Engine,
}

impl SagaApi {
    pub fn new(pool: PgPool, engine: Engine) -> Self {
        SagaApi { pool, engine }
    }

    async fn describe(&self, saga: SagaState) -> Result<v1::Saga, Error> {
        let log: Vec<LogRow> = sqlx::query_as(
            "SELECT at, step, action, detail, trace_id FROM saga_log WHERE order_id = $1 ORDER BY id",
        )
        .bind(&saga.order_id)
        .fetch_all(&self.pool)
        .await?;
        let steps = self
            .engine
            .workflow()
            .steps()
            .map(|(phase, step)| {
                let state = saga.step(step.name);
                v1::SagaStep {
                    step: step.name.to_owned(),
                    phase: phase.phase as i32,
                    status: state.status.as_str().to_owned(),
                    attempts: state.attempts.max(0) as u32,
                    started_at: state.started_at.map(timestamp_from),
                    finished_at: state.finished_at.map(timestamp_from),
                    deadline: state.deadline.map(timestamp_from),
                    last_error: state.last_error.unwrap_or_default(),
                    trace_id: state.trace_id.unwrap_or_default(),
                }
            })
            .collect();
        Ok(v1::Saga {
            order_id: saga.order_id.clone(),
            phase: saga.phase as i32,
            status: saga.status.as_str().to_owned(),
            stalled_reason: saga.stalled_reason.clone().unwrap_or_default(),
            requested_delivery_date: date_to_string(saga.requested),
            promised_delivery_date: saga.promised.map(date_to_string).unwrap_or_default(),
            projected_delivery_date: saga.projected.map(date_to_string).unwrap_or_default(),
            at_risk: saga.at_risk,
            steps,
            log: log
                .into_iter()
                .map(|(at, step, action, detail, trace_id)| v1::SagaLogEntry {
                    at: Some(timestamp_from(at)),
                    step,
                    action,
                    detail,
                    trace_id: trace_id.unwrap_or_default(),
                })
                .collect(),
            created_at: Some(timestamp_from(saga.created_at)),
            updated_at: Some(timestamp_from(saga.updated_at)),
        })
    }

    async fn operator_action(
        &self,
        request: v1::StepRequest,
        skip: bool,
    ) -> Result<v1::Saga, Error> {
        validate_order_id(&request.order_id)?;
        if request.step.is_empty() {
            return Err(gendan_grpc::FieldError::new("step", "is required").into());
        }
        let operator = request.operator.trim();
        if operator.is_empty() {
            return Err(
                gendan_grpc::FieldError::new("operator", "is required: who decided").into(),
            );
        }
        let mut tx = self.pool.begin().await?;
        let saga = if skip {
            self.engine
                .skip_step(
                    &mut tx,
                    &request.order_id,
                    &request.step,
                    operator,
                    &request.reason,
                )
                .await?
        } else {
            self.engine
                .retry_step(
                    &mut tx,
                    &request.order_id,
                    &request.step,
                    operator,
                    &request.reason,
                )
                .await?
        };
        tx.commit().await?;
        self.describe(saga).await
    }
}

#[tonic::async_trait]
impl SagaService for SagaApi {
    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_saga(
        &self,
        request: Request<v1::GetSagaRequest>,
    ) -> Result<Response<v1::Saga>, Status> {
        let order_id = request.into_inner().order_id;
        let result = async {
            validate_order_id(&order_id)?;
            let mut conn = self.pool.acquire().await?;
            let saga = SagaState::load(&mut conn, &order_id, false)
                .await?
                .ok_or_else(|| Error::NotFound(format!("saga for order {order_id}")))?;
            self.describe(saga).await
        }
        .await;
        result.map(Response::new).map_err(gendan_grpc::into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn list_stalled(
        &self,
        request: Request<v1::ListStalledRequest>,
    ) -> Result<Response<v1::ListStalledResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => 100,
            n => n.min(1000),
        };
        let result = async {
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT order_id FROM sagas WHERE status = 'stalled' ORDER BY updated_at LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            let mut sagas = Vec::with_capacity(ids.len());
            let mut conn = self.pool.acquire().await?;
            for id in ids {
                if let Some(saga) = SagaState::load(&mut conn, &id, false).await? {
                    sagas.push(self.describe(saga).await?);
                }
            }
            Ok::<_, Error>(v1::ListStalledResponse { sagas })
        }
        .await;
        result.map(Response::new).map_err(gendan_grpc::into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id, step = %request.get_ref().step))]
    async fn retry_step(
        &self,
        request: Request<v1::StepRequest>,
    ) -> Result<Response<v1::Saga>, Status> {
        self.operator_action(request.into_inner(), false)
            .await
            .map(Response::new)
            .map_err(gendan_grpc::into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id, step = %request.get_ref().step))]
    async fn skip_step(
        &self,
        request: Request<v1::StepRequest>,
    ) -> Result<Response<v1::Saga>, Status> {
        self.operator_action(request.into_inner(), true)
            .await
            .map(Response::new)
            .map_err(gendan_grpc::into_status)
    }
}
