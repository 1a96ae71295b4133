//! gRPC `SagaService`: read a saga, list stalled ones, and the operator's
//! retry / skip of a stalled step.

use chrono::{DateTime, Utc};
use gendan_proto::v1;
use gendan_proto::v1::saga_service_server::SagaService;
use gendan_proto::{date_to_string, timestamp_from};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::engine::{Engine, decision_proto};
use crate::exceptions;
use crate::state::SagaState;
use crate::store::ListedDecision;
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

    /// A consistent read of one saga: its row, steps and log from one
    /// snapshot, so a reader never sees a step of a later state than the
    /// saga's phase.
    async fn read(&self, order_id: &str) -> Result<Option<v1::Saga>, Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let Some(saga) = SagaState::load(&mut tx, order_id, false).await? else {
            return Ok(None);
        };
        let described = self.describe_on(&mut tx, saga).await?;
        tx.commit().await?;
        Ok(Some(described))
    }

    async fn describe(&self, saga: SagaState) -> Result<v1::Saga, Error> {
        let mut conn = self.pool.acquire().await?;
        self.describe_on(&mut conn, saga).await
    }

    async fn describe_on(
        &self,
        conn: &mut sqlx::PgConnection,
        saga: SagaState,
    ) -> Result<v1::Saga, Error> {
        let log: Vec<LogRow> = sqlx::query_as(
            "SELECT at, step, action, detail, trace_id FROM saga_log WHERE order_id = $1 ORDER BY id",
        )
        .bind(&saga.order_id)
        .fetch_all(&mut *conn)
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
                    runs: state.runs.max(0) as u32,
                    failures: state.failures.max(0) as u32,
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
            decisions: saga
                .decisions
                .iter()
                .map(|decision| decision_proto(&saga.order_id, decision))
                .collect(),
            compensations: saga
                .compensations
                .iter()
                .map(|(step, c)| v1::Compensation {
                    step: step.clone(),
                    action: c.action.clone(),
                    status: c.status.as_str().to_owned(),
                    attempts: c.attempts.max(0) as u32,
                    started_at: Some(timestamp_from(c.started_at)),
                    finished_at: c.finished_at.map(timestamp_from),
                    detail: c.detail.clone(),
                })
                .collect(),
        })
    }

    async fn decide(&self, request: v1::DecideRequest) -> Result<v1::Saga, Error> {
        validate_order_id(&request.order_id)?;
        let decision_id = uuid::Uuid::parse_str(&request.decision_id).map_err(|_| {
            gendan_grpc::FieldError::new(
                "decision_id",
                format!("{:?} is not a decision id (UUID)", request.decision_id),
            )
        })?;
        if request.answer.trim().is_empty() {
            return Err(gendan_grpc::FieldError::new("answer", "is required").into());
        }
        let operator = required_operator(&request.operator)?;
        let mut tx = self.pool.begin().await?;
        let saga = self
            .engine
            .decide(
                &mut tx,
                &request.order_id,
                decision_id,
                request.answer.trim(),
                operator,
                request.comment.trim(),
            )
            .await?;
        tx.commit().await?;
        self.describe(saga).await
    }

    async fn cancel(&self, request: v1::CancelOrderRequest) -> Result<v1::Saga, Error> {
        validate_order_id(&request.order_id)?;
        let operator = required_operator(&request.operator)?;
        if request.reason.trim().is_empty() {
            return Err(gendan_grpc::FieldError::new(
                "reason",
                "is required: why the order is cancelled",
            )
            .into());
        }
        let mut tx = self.pool.begin().await?;
        let saga = self
            .engine
            .cancel(&mut tx, &request.order_id, operator, request.reason.trim())
            .await?;
        tx.commit().await?;
        self.describe(saga).await
    }

    async fn decisions(
        &self,
        request: v1::ListDecisionsRequest,
    ) -> Result<v1::ListDecisionsResponse, Error> {
        if !request.order_id.is_empty() {
            validate_order_id(&request.order_id)?;
        }
        let limit = match request.limit {
            0 => 100,
            n => n.min(1000),
        };
        let rows: Vec<ListedDecision> = sqlx::query_as(
            "SELECT order_id, decision_id, step, kind, question, options, opened_at, deadline, reminders, \
               answer, answered_by, answered_at, comment, exception_id, subject \
             FROM saga_decisions \
             WHERE ($1 = '' OR order_id = $1) AND (NOT $2 OR answer IS NULL) \
             ORDER BY answer IS NOT NULL, deadline LIMIT $3",
        )
        .bind(&request.order_id)
        .bind(request.open_only)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(v1::ListDecisionsResponse {
            decisions: rows
                .into_iter()
                .map(|row| {
                    let (order_id, decision) = row.into_parts();
                    decision_proto(&order_id, &decision)
                })
                .collect(),
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

fn required_operator(operator: &str) -> Result<&str, Error> {
    let operator = operator.trim();
    if operator.is_empty() {
        return Err(gendan_grpc::FieldError::new("operator", "is required: who decided").into());
    }
    Ok(operator)
}

#[tonic::async_trait]
impl SagaService for SagaApi {
    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn list_decisions(
        &self,
        request: Request<v1::ListDecisionsRequest>,
    ) -> Result<Response<v1::ListDecisionsResponse>, Status> {
        self.decisions(request.into_inner())
            .await
            .map(Response::new)
            .map_err(gendan_grpc::into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn decide(
        &self,
        request: Request<v1::DecideRequest>,
    ) -> Result<Response<v1::Saga>, Status> {
        SagaApi::decide(self, request.into_inner())
            .await
            .map(Response::new)
            .map_err(gendan_grpc::into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn cancel_order(
        &self,
        request: Request<v1::CancelOrderRequest>,
    ) -> Result<Response<v1::Saga>, Status> {
        self.cancel(request.into_inner())
            .await
            .map(Response::new)
            .map_err(gendan_grpc::into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_saga(
        &self,
        request: Request<v1::GetSagaRequest>,
    ) -> Result<Response<v1::Saga>, Status> {
        let order_id = request.into_inner().order_id;
        let result = async {
            validate_order_id(&order_id)?;
            self.read(&order_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("saga for order {order_id}")))
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
            for id in ids {
                if let Some(saga) = self.read(&id).await? {
                    sagas.push(saga);
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

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn list_exceptions(
        &self,
        request: Request<v1::ListExceptionsRequest>,
    ) -> Result<Response<v1::ListExceptionsResponse>, Status> {
        let result = async {
            let filter = exceptions::Filter::from_request(&request.into_inner())?;
            let mut conn = self.pool.acquire().await?;
            let exceptions = exceptions::list(&mut conn, &filter).await?;
            Ok::<_, Error>(v1::ListExceptionsResponse { exceptions })
        }
        .await;
        result.map(Response::new).map_err(gendan_grpc::into_status)
    }

    #[tracing::instrument(skip_all, fields(exception_id = %request.get_ref().exception_id))]
    async fn get_exception(
        &self,
        request: Request<v1::GetExceptionRequest>,
    ) -> Result<Response<v1::OrderException>, Status> {
        let id = request.into_inner().exception_id;
        let result = async {
            let exception_id = uuid::Uuid::parse_str(id.trim()).map_err(|_| {
                gendan_grpc::FieldError::new(
                    "exception_id",
                    format!("{id:?} is not an exception id (UUID)"),
                )
            })?;
            let mut conn = self.pool.acquire().await?;
            exceptions::get(&mut conn, exception_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("exception {exception_id}")))
        }
        .await;
        result.map(Response::new).map_err(gendan_grpc::into_status)
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
