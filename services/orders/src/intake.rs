//! CreateOrder: validate, de-duplicate by request id, find the customer,
//! store and announce.
//!
//! Everything a new order produces is written in one transaction: the
//! request-id claim (first, so a concurrent retry waits on its unique key and
//! then finds this order), the order row and lines, the `OrderCreated` outbox
//! row and the first timeline entry. The customer is looked up in the
//! customer master in that transaction ([`crate::customers::resolve`]): the
//! order takes the customer's name and id, the defaults the request left
//! empty, and a copy of the customer's rules. Either the order exists and
//! will be announced, or nothing was written (an unknown customer rolls the
//! request-id claim back too). [`crate::announcer`] announces it again, as
//! the same fact, until its workflow starts.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use gendan_messaging::{Cause, Outgoing, outbox};
use gendan_proto::v1::{CreateOrderRequest, Order, OrderCreated, OrderLine, Phase};
use gendan_proto::{date_to_string, timestamp_from};
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{self, status};
use crate::validate::{self, NewOrder};
use crate::{Error, Result, SERVICE, customers, timeline};

/// The order for `request` and whether this call created it (`false`: the
/// request id was seen before and that order is returned unchanged).
///
/// `today` is the earliest acceptable requested delivery date.
pub async fn create_order(
    pool: &PgPool,
    request: &CreateOrderRequest,
    today: NaiveDate,
) -> Result<(Order, bool)> {
    // A retry is answered before the other fields are validated: the same
    // request may no longer pass (its delivery date is now in the past), but
    // it did when the order was made.
    let request_id = validate::client_request_id(&request.client_request_id)?;
    if let Some(existing) = store::order_for_request(pool, request_id).await? {
        return Ok((load(pool, existing).await?, false));
    }
    let checked = validate::new_order(request, today)?;

    let order_id = Uuid::now_v7();
    // PostgreSQL keeps microseconds; the order we return must equal the one
    // GetOrder will read back.
    let now = Utc::now().trunc_subsecs(6);
    let mut tx = pool.begin().await?;
    if !store::claim_request_id(&mut tx, request_id, order_id).await? {
        // A concurrent call with the same request id committed first.
        tx.rollback().await?;
        let existing = store::order_for_request(pool, request_id)
            .await?
            .ok_or_else(|| Error::Inconsistent(format!("request {request_id} has no order")))?;
        return Ok((load(pool, existing).await?, false));
    }
    // Dropping the transaction on a refusal rolls the request-id claim back.
    let customer = customers::resolve(&mut tx, &checked.customer).await?;
    let new_order = checked.for_customer(&customer);
    store::insert_order(&mut tx, order_id, &new_order, now).await?;
    let order = order_of(order_id, &new_order, now);
    let order_id_text = order.order_id.clone();
    let created = announcement(&order);
    outbox::write(&mut tx, std::slice::from_ref(&created)).await?;
    timeline::append_own(&mut tx, order_id, &created).await?;
    tx.commit().await?;
    tracing::debug!(order_id = %order_id_text, customer = %order.customer, "order created");
    Ok((order, true))
}

/// `OrderCreated` for `order`, the fact that starts its workflow: the same
/// event id however often it is announced ([`crate::announcer`]).
pub fn announcement(order: &Order) -> Outgoing {
    Outgoing::fact(
        SERVICE,
        &order.order_id,
        &OrderCreated {
            order: Some(order.clone()),
        },
        &Cause::root(&order.order_id),
        "created",
    )
}

async fn load(pool: &PgPool, order_id: Uuid) -> Result<Order> {
    let mut conn = pool.acquire().await?;
    store::get_order(&mut conn, order_id).await?.ok_or_else(|| {
        Error::Inconsistent(format!("order {order_id} of a create request is missing"))
    })
}

/// The stored order as GetOrder will return it.
fn order_of(order_id: Uuid, new_order: &NewOrder, now: DateTime<Utc>) -> Order {
    Order {
        order_id: order_id.to_string(),
        customer: new_order.customer.clone(),
        lines: new_order
            .lines
            .iter()
            .map(|line| OrderLine {
                product: line.product.clone(),
                spec: line.spec.clone(),
                quantity: line.quantity,
                unit_price_minor: line.unit_price_minor,
            })
            .collect(),
        currency: new_order.currency.clone(),
        requested_delivery_date: date_to_string(new_order.requested_delivery_date),
        incoterm: new_order.incoterm.clone(),
        payment_terms: new_order.payment_terms.clone(),
        export: new_order.export,
        phase: Phase::Received as i32,
        projected_delivery_date: String::new(),
        at_risk: false,
        total_minor: new_order.total_minor,
        created_at: Some(timestamp_from(now)),
        updated_at: Some(timestamp_from(now)),
        workflow_status: status::RUNNING.to_owned(),
        open_exceptions: Vec::new(),
        customer_id: new_order.customer_id.clone(),
        customer_rules: Some(new_order.customer_rules.clone()),
        // Nothing promised, planned or projected yet.
        promised_delivery_date: String::new(),
        next_milestone: String::new(),
        next_milestone_date: String::new(),
        slip_days: 0,
    }
}
