//! The `gendan.v1.FinanceService` gRPC API.
//!
//! Each call validates its request completely ([`validate`]) before touching
//! the database. `RecordPayment` runs in one transaction under the order
//! lock: idempotency key lookup, checks against the receivable, the payment,
//! its allocation and the events it causes (through the outbox) commit
//! together or not at all; `RecordRefund` does the same in [`refunds`].
//! Reads run in a repeatable-read transaction so totals and lists agree with
//! each other. `GetReceivable` shows credit notes through the figures they
//! change (the message has no field for them, nor for refunds): the
//! receivable's `outstanding_minor` and `refund_due_minor` are its
//! [`Balance`] (the total less credits, set against payments less refunds),
//! and an invoice a credit settled is `paid` with `paid_minor` the money
//! alone. `total_minor` stays the order's and `paid_minor` the money
//! received. `RecordPayment` refuses more than is outstanding on the same
//! figure.
//! `SetDunningSchedule` / `GetDunningSchedule` write and read the schedule
//! the [`dunning_worker`] reads at every pass. `SetInspectionRate`,
//! `GetInspectionRate` and `GetCostEstimate` are served by
//! [`crate::estimates`]; `SetExchangeRate` (one transaction: the rate and
//! the costs it values) and `ListExchangeRates` by
//! [`crate::exchange_rates`]; `GetCostLedger` reads [`crate::ledger`].
//! Value dates are checked
//! against the service [`Clock`] (refunds) or the system clock (payments,
//! which the bank dates). Errors become statuses only through
//! [`gendan_grpc::into_status`].
//!
//! [`refunds`]: crate::refunds
//! [`dunning_worker`]: crate::dunning_worker

use std::sync::Arc;

use chrono::NaiveDate;
use gendan_grpc::{FieldError, into_status};
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::date_to_string;
use gendan_proto::v1::finance_service_server::FinanceService;
use gendan_proto::v1::{
    CostLedger, DunningSchedule, ExchangeRate, GetCostLedgerRequest, GetDunningScheduleRequest,
    GetReceivableRequest, LabourRate, ListExchangeRatesRequest, ListExchangeRatesResponse,
    ListLabourRatesRequest, ListLabourRatesResponse, ListOverdueRequest, ListOverdueResponse,
    OverdueInvoice, PaymentReceived, Receivable, RecordPaymentRequest, RecordPaymentResponse,
    RecordRefundRequest, RecordRefundResponse,
};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tonic::{Request, Response, Status};

use crate::balance::{self, Balance};
use crate::clock::Clock;
use crate::dunning::Schedule;
use crate::receivables::{self, Invoice, Payment, STATUS_CANCELLED};
use crate::validate::{self, NewPayment};
use crate::{Error, Result, SERVICE, dunning_worker, exchange_rates, ledger, refunds};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Clone)]
pub struct FinanceApi {
    pool: PgPool,
    clock: Arc<dyn Clock>,
}

impl FinanceApi {
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>) -> Self {
        FinanceApi { pool, clock }
    }

    async fn read_tx(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn record(&self, request: &RecordPaymentRequest) -> Result<RecordPaymentResponse> {
        let new = validate::payment(request, self.clock.today())?;
        let mut tx = self.pool.begin().await?;
        // Two calls for one order (the same key retried, or two payments)
        // run one after the other from here.
        receivables::lock_order(&mut tx, &new.order_id).await?;
        if let Some(existing) = receivables::payment_by_key(&mut tx, &new.idempotency_key).await? {
            return repeated(&mut tx, existing, &new).await;
        }
        let receivable = receivables::get(&mut tx, &new.order_id).await?;
        if receivable.status == STATUS_CANCELLED {
            return Err(Error::Cancelled(new.order_id));
        }
        if new.currency != receivable.currency {
            return Err(FieldError::new(
                "currency",
                format!(
                    "the receivable of order {} is in {}, not {}",
                    new.order_id, receivable.currency, new.currency
                ),
            )
            .into());
        }
        let outstanding_minor = balance::load(&mut tx, &receivable)
            .await?
            .outstanding_minor();
        if new.amount_minor > outstanding_minor {
            return Err(Error::Overpayment {
                order_id: new.order_id,
                amount_minor: new.amount_minor,
                outstanding_minor,
            });
        }
        let Some(payment) = receivables::insert_payment(&mut tx, &new).await? else {
            // The key was taken by a concurrent call for another order (one
            // for this order would have waited on the lock): answer as a
            // repeat of that payment.
            let existing = receivables::payment_by_key(&mut tx, &new.idempotency_key)
                .await?
                .ok_or_else(|| Error::Database(sqlx::Error::RowNotFound))?;
            return repeated(&mut tx, existing, &new).await;
        };
        let outstanding_after = outstanding_minor - new.amount_minor;
        tracing::info!(payment_id = %payment.payment_id, amount_minor = new.amount_minor, outstanding_after, "payment recorded");

        let cause = Cause::root(&new.order_id);
        let settled = receivables::settle(&mut tx, &receivable, new.received_on, &cause).await?;
        let invoices_paid = receivables::invoices_settled_by(&mut tx, payment.payment_id).await?;
        let received = PaymentReceived {
            order_id: new.order_id.clone(),
            payment_id: payment.payment_id.to_string(),
            amount_minor: new.amount_minor,
            outstanding_minor: outstanding_after,
            received_on: date_to_string(new.received_on),
            invoices_paid,
        };
        let mut events = vec![Outgoing::event(SERVICE, &new.order_id, &received, &cause)];
        events.extend(settled);
        outbox::write(&mut tx, &events).await?;

        let payment = receivables::payment_by_key(&mut tx, &new.idempotency_key)
            .await?
            .unwrap_or(payment);
        let allocations = receivables::allocations(&mut tx, &new.order_id).await?;
        tx.commit().await?;
        Ok(RecordPaymentResponse {
            payment: Some(receivables::payment_proto(&payment, &allocations)),
            created: true,
            outstanding_minor: outstanding_after,
        })
    }

    async fn refund(&self, request: &RecordRefundRequest) -> Result<RecordRefundResponse> {
        let new = validate::refund(request, self.clock.today())?;
        let mut tx = self.pool.begin().await?;
        let response = refunds::record(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(response)
    }

    async fn set_schedule(&self, request: &DunningSchedule) -> Result<DunningSchedule> {
        let schedule = Schedule::new(&request.reminder_days)?;
        let mut conn = self.pool.acquire().await?;
        dunning_worker::set_schedule(&mut conn, &schedule).await?;
        Ok(DunningSchedule {
            reminder_days: schedule.days().to_vec(),
        })
    }

    async fn schedule(&self) -> Result<DunningSchedule> {
        let mut conn = self.pool.acquire().await?;
        let schedule = dunning_worker::schedule(&mut conn).await?;
        Ok(DunningSchedule {
            reminder_days: schedule.days().to_vec(),
        })
    }

    async fn receivable(&self, request: &GetReceivableRequest) -> Result<Receivable> {
        let order_id = validate::order_id(&request.order_id)?;
        let mut tx = self.read_tx().await?;
        let receivable = receivables::get(&mut tx, &order_id).await?;
        let installments = receivables::installments(&mut tx, &order_id).await?;
        let invoices = receivables::invoices(&mut tx, &order_id).await?;
        let payments = receivables::payments(&mut tx, &order_id).await?;
        let allocations = receivables::allocations(&mut tx, &order_id).await?;
        let money: Balance = balance::load(&mut tx, &receivable).await?;
        tx.commit().await?;

        let overflow = || Error::Overflow(order_id.clone());
        let invoiced_minor = invoices
            .iter()
            .filter(|i| i.status != receivables::INVOICE_VOID)
            .try_fold(0i64, |sum, i| sum.checked_add(i.amount_minor))
            .ok_or_else(overflow)?;
        let paid_minor = sum_payments(&payments).ok_or_else(overflow)?;
        Ok(Receivable {
            order_id: receivable.order_id.clone(),
            customer: receivable.customer.clone(),
            total_minor: receivable.total_minor,
            currency: receivable.currency.clone(),
            payment_terms: receivable.payment_terms.clone(),
            status: receivable.status.clone(),
            installments: installments.iter().map(|i| i.to_proto()).collect(),
            invoices: invoices.iter().map(Invoice::to_proto).collect(),
            payments: payments
                .iter()
                .map(|p| receivables::payment_proto(p, &allocations))
                .collect(),
            invoiced_minor,
            paid_minor,
            outstanding_minor: money.outstanding_minor(),
            refund_due_minor: money.refund_due_minor(),
            opened_on: date_to_string(receivable.opened_on),
            deposit_received_on: receivable
                .deposit_received_on
                .map(date_to_string)
                .unwrap_or_default(),
            paid_in_full_on: receivable
                .paid_in_full_on
                .map(date_to_string)
                .unwrap_or_default(),
            cost_budget_minor: receivable.cost_budget_minor,
        })
    }

    async fn overdue(&self, request: &ListOverdueRequest) -> Result<ListOverdueResponse> {
        let as_of = validate::date_or(&request.as_of, "as_of", self.clock.today())?;
        if request.limit > MAX_LIMIT {
            return Err(FieldError::new("limit", format!("must be at most {MAX_LIMIT}")).into());
        }
        let limit = if request.limit == 0 {
            DEFAULT_LIMIT
        } else {
            request.limit
        };
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<OverdueRow> = sqlx::query_as(
            "SELECT i.invoice_id, i.order_id, i.installment_seq, i.kind, i.trigger, \
               i.amount_minor, i.paid_minor, i.credited_minor, i.currency, i.issued_on, \
               i.due_date, i.status, r.customer \
             FROM invoices i JOIN receivables r ON r.order_id = i.order_id \
             WHERE i.status IN ('open', 'partially_paid') AND i.due_date < $1 \
               AND r.status <> 'cancelled' \
             ORDER BY i.due_date, i.seq LIMIT $2",
        )
        .bind(as_of)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        Ok(ListOverdueResponse {
            invoices: rows
                .into_iter()
                .map(|row| OverdueInvoice {
                    days_overdue: days_between(row.invoice.due_date, as_of),
                    open_minor: row.invoice.open_minor(),
                    customer: row.customer,
                    invoice: Some(row.invoice.to_proto()),
                })
                .collect(),
        })
    }

    async fn ledger(&self, request: &GetCostLedgerRequest) -> Result<CostLedger> {
        let order_id = validate::order_id(&request.order_id)?;
        let mut tx = self.read_tx().await?;
        let ledger = ledger::ledger(&mut tx, &order_id).await?;
        tx.commit().await?;
        ledger.ok_or(Error::LedgerNotFound(order_id))
    }

    async fn set_rate(&self, request: &LabourRate) -> Result<LabourRate> {
        let rate = validate::labour_rate(request)?;
        let mut conn = self.pool.acquire().await?;
        sqlx::query(
            "INSERT INTO labour_rates (work_centre, currency, rate_minor_per_hour) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (work_centre) DO UPDATE SET currency = EXCLUDED.currency, \
               rate_minor_per_hour = EXCLUDED.rate_minor_per_hour, updated_at = now()",
        )
        .bind(&rate.work_centre)
        .bind(&rate.currency)
        .bind(rate.rate_minor_per_hour)
        .execute(&mut *conn)
        .await?;
        tracing::info!(work_centre = %rate.work_centre, rate_minor_per_hour = rate.rate_minor_per_hour, "labour rate set");
        Ok(rate)
    }

    async fn rates(&self) -> Result<ListLabourRatesResponse> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT work_centre, currency, rate_minor_per_hour FROM labour_rates ORDER BY work_centre",
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(ListLabourRatesResponse {
            rates: rows
                .into_iter()
                .map(|(work_centre, currency, rate_minor_per_hour)| LabourRate {
                    work_centre,
                    currency,
                    rate_minor_per_hour,
                })
                .collect(),
        })
    }
}

/// The answer to a payment whose idempotency key was seen before: the first
/// payment as it stands, nothing written. The body is not compared with the
/// first call's (as with `CreateOrder`): the key alone names the payment.
async fn repeated(
    conn: &mut PgConnection,
    existing: Payment,
    new: &NewPayment,
) -> Result<RecordPaymentResponse> {
    if existing.order_id != new.order_id {
        return Err(FieldError::new(
            "idempotency_key",
            format!(
                "{:?} was already used for a payment on order {}",
                new.idempotency_key, existing.order_id
            ),
        )
        .into());
    }
    let receivable = receivables::get(conn, &existing.order_id).await?;
    let outstanding_minor = balance::load(conn, &receivable).await?.outstanding_minor();
    let allocations = receivables::allocations(conn, &existing.order_id).await?;
    tracing::info!(payment_id = %existing.payment_id, "payment seen before, answering it again");
    Ok(RecordPaymentResponse {
        payment: Some(receivables::payment_proto(&existing, &allocations)),
        created: false,
        outstanding_minor,
    })
}

fn sum_payments(payments: &[Payment]) -> Option<i64> {
    payments
        .iter()
        .try_fold(0i64, |sum, p| sum.checked_add(p.amount_minor))
}

fn days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    u32::try_from((to - from).num_days()).unwrap_or(0)
}

#[derive(sqlx::FromRow)]
struct OverdueRow {
    #[sqlx(flatten)]
    invoice: Invoice,
    customer: String,
}

#[tonic::async_trait]
impl FinanceService for FinanceApi {
    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn record_payment(
        &self,
        request: Request<RecordPaymentRequest>,
    ) -> Result<Response<RecordPaymentResponse>, Status> {
        self.record(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_receivable(
        &self,
        request: Request<GetReceivableRequest>,
    ) -> Result<Response<Receivable>, Status> {
        self.receivable(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn list_overdue(
        &self,
        request: Request<ListOverdueRequest>,
    ) -> Result<Response<ListOverdueResponse>, Status> {
        self.overdue(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_cost_ledger(
        &self,
        request: Request<GetCostLedgerRequest>,
    ) -> Result<Response<CostLedger>, Status> {
        self.ledger(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(work_centre = %request.get_ref().work_centre))]
    async fn set_labour_rate(
        &self,
        request: Request<LabourRate>,
    ) -> Result<Response<LabourRate>, Status> {
        self.set_rate(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn list_labour_rates(
        &self,
        _request: Request<ListLabourRatesRequest>,
    ) -> Result<Response<ListLabourRatesResponse>, Status> {
        self.rates().await.map(Response::new).map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn record_refund(
        &self,
        request: Request<RecordRefundRequest>,
    ) -> Result<Response<RecordRefundResponse>, Status> {
        self.refund(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn set_dunning_schedule(
        &self,
        request: Request<DunningSchedule>,
    ) -> Result<Response<DunningSchedule>, Status> {
        self.set_schedule(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn get_dunning_schedule(
        &self,
        _request: Request<GetDunningScheduleRequest>,
    ) -> Result<Response<DunningSchedule>, Status> {
        self.schedule()
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(
        skip_all,
        fields(from = %request.get_ref().from_currency, to = %request.get_ref().to_currency)
    )]
    async fn set_exchange_rate(
        &self,
        request: Request<ExchangeRate>,
    ) -> Result<Response<ExchangeRate>, Status> {
        exchange_rates::set_exchange_rate(&self.pool, request.get_ref(), self.clock.today())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn list_exchange_rates(
        &self,
        request: Request<ListExchangeRatesRequest>,
    ) -> Result<Response<ListExchangeRatesResponse>, Status> {
        exchange_rates::list_exchange_rates(&self.pool, request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn set_inspection_rate(
        &self,
        request: Request<gendan_proto::v1::InspectionRate>,
    ) -> Result<Response<gendan_proto::v1::InspectionRate>, Status> {
        crate::estimates::set_inspection_rate(&self.pool, request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all)]
    async fn get_inspection_rate(
        &self,
        _request: Request<gendan_proto::v1::GetInspectionRateRequest>,
    ) -> Result<Response<gendan_proto::v1::InspectionRate>, Status> {
        crate::estimates::get_inspection_rate(&self.pool)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_cost_estimate(
        &self,
        request: Request<gendan_proto::v1::GetCostEstimateRequest>,
    ) -> Result<Response<gendan_proto::v1::CostEstimate>, Status> {
        crate::estimates::get_cost_estimate(&self.pool, request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }
}
