//! The `gendan.v1.OrderService` gRPC API.
//!
//! Each RPC is an instrumented method returning the crate [`Error`]; the
//! tonic trait impl only converts with [`gendan_grpc::into_status`], so the
//! error-to-status mapping stays in one place (`impl ServiceErrorCode`).
//! ListOrders pages newest first with a keyset cursor ([`paging`]), so new
//! orders never shift the pages a client is walking through. AcceptOrder is
//! [`acceptance`], RaiseClaim and ListClaims are [`claims`], AmendOrder and
//! ListAmendments are [`amendments`]; ListNotices, GetSummary and
//! GetMilestones ([`milestones`]) read what the consumers wrote.
//! UpsertCustomer, GetCustomer and ListCustomers are the customer master,
//! [`customers`].

use chrono::Utc;
use gendan_grpc::{FieldError, into_status};
use gendan_proto::timestamp_to;
use gendan_proto::v1::order_service_server::OrderService;
use gendan_proto::v1::{
    AcceptOrderRequest, AmendOrderRequest, Amendment, Claim, CreateOrderRequest,
    CreateOrderResponse, Customer, GetCustomerRequest, GetMilestonesRequest, GetMilestonesResponse,
    GetOrderRequest, GetSummaryRequest, GetTimelineRequest, GetTimelineResponse,
    ListAmendmentsRequest, ListAmendmentsResponse, ListClaimsRequest, ListClaimsResponse,
    ListCustomersRequest, ListCustomersResponse, ListNoticesRequest, ListNoticesResponse,
    ListOrdersRequest, ListOrdersResponse, Order, OrderChange, OrderSort, OrderSummary,
    RaiseClaimRequest, WatchOrdersRequest,
};
use prost::Message as _;
use sqlx::PgPool;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::store::{self, Cursor};
use crate::watch::{self, Watches};
use crate::{
    Error, Result, acceptance, amendments, claims, customers, intake, milestones, notices, paging,
    timeline, validate,
};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

/// The OrderService implementation; cheap to clone.
#[derive(Debug, Clone)]
pub struct OrderApi {
    pool: PgPool,
    watches: Watches,
}

impl OrderApi {
    pub fn new(pool: PgPool, watches: Watches) -> Self {
        OrderApi { pool, watches }
    }

    #[tracing::instrument(skip_all, fields(client_request_id = %request.client_request_id), err(level = "debug"))]
    pub async fn create(&self, request: &CreateOrderRequest) -> Result<CreateOrderResponse> {
        let today = Utc::now().date_naive();
        let (order, created) = intake::create_order(&self.pool, request, today).await?;
        Ok(CreateOrderResponse {
            order: Some(order),
            created,
        })
    }

    #[tracing::instrument(skip_all, fields(order_id = %order_id), err(level = "debug"))]
    pub async fn get(&self, order_id: &str) -> Result<Order> {
        let id = parse_order_id(order_id)?;
        let mut conn = self.pool.acquire().await?;
        store::get_order(&mut conn, id)
            .await?
            .ok_or_else(|| Error::OrderNotFound(order_id.to_owned()))
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn list(&self, request: &ListOrdersRequest) -> Result<ListOrdersResponse> {
        let mut filter =
            watch::list_filter(request.phase, &request.customer, request.at_risk_only)?;
        filter.exception_open_only = request.exception_open_only;
        let by_slip = match OrderSort::try_from(request.sort) {
            Ok(OrderSort::Unspecified) => false,
            Ok(OrderSort::Slip) => true,
            Err(_) => {
                let problem = format!("{} is not a known sort", request.sort);
                return Err(FieldError::new("sort", problem).into());
            }
        };
        let cursor = paging::decode(&request.page_token)?;
        if cursor.is_some_and(|cursor| cursor.slip.is_some() != by_slip) {
            let problem = "a token from a list sorted another way";
            return Err(FieldError::new("page_token", problem).into());
        }
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        };

        // One extra row tells whether another page follows.
        let mut conn = self.pool.acquire().await?;
        let limit = i64::from(page_size) + 1;
        let mut orders = store::list_orders(&mut conn, &filter, by_slip, cursor, limit).await?;
        let more = orders.len() > page_size as usize;
        orders.truncate(page_size as usize);
        let next_page_token = match orders.last() {
            Some(last) if more => paging::encode(cursor_after(last, by_slip)?),
            _ => String::new(),
        };
        Ok(ListOrdersResponse {
            orders,
            next_page_token,
        })
    }

    #[tracing::instrument(skip_all, fields(order_id = %order_id), err(level = "debug"))]
    pub async fn timeline(&self, order_id: &str) -> Result<GetTimelineResponse> {
        let id = parse_order_id(order_id)?;
        let entries = timeline::entries(&self.pool, id).await?;
        // Every order has at least its OrderCreated entry, so an empty
        // timeline means there is no such order.
        if entries.is_empty() {
            return Err(Error::OrderNotFound(order_id.to_owned()));
        }
        Ok(GetTimelineResponse { entries })
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.order_id), err(level = "debug"))]
    pub async fn accept(&self, request: &AcceptOrderRequest) -> Result<Order> {
        acceptance::accept(&self.pool, request).await
    }

    #[tracing::instrument(
        skip_all,
        fields(order_id = %request.order_id, client_request_id = %request.client_request_id),
        err(level = "debug")
    )]
    pub async fn raise(&self, request: &RaiseClaimRequest) -> Result<Claim> {
        claims::raise(&self.pool, request).await
    }

    #[tracing::instrument(skip_all, fields(order_id = %order_id), err(level = "debug"))]
    pub async fn claims(&self, order_id: &str) -> Result<ListClaimsResponse> {
        let claims = claims::list(&self.pool, order_id).await?;
        Ok(ListClaimsResponse { claims })
    }

    #[tracing::instrument(
        skip_all,
        fields(order_id = %request.order_id, client_request_id = %request.client_request_id),
        err(level = "debug")
    )]
    pub async fn amend(&self, request: &AmendOrderRequest) -> Result<Amendment> {
        let today = Utc::now().date_naive();
        amendments::amend(&self.pool, request, today).await
    }

    #[tracing::instrument(skip_all, fields(order_id = %order_id), err(level = "debug"))]
    pub async fn amendments(&self, order_id: &str) -> Result<ListAmendmentsResponse> {
        let amendments = amendments::list(&self.pool, order_id).await?;
        Ok(ListAmendmentsResponse { amendments })
    }

    #[tracing::instrument(skip_all, fields(order_id = %order_id), err(level = "debug"))]
    pub async fn notices(&self, order_id: &str) -> Result<ListNoticesResponse> {
        let id = parse_order_id(order_id)?;
        if store::state(&self.pool, id).await?.is_none() {
            return Err(Error::OrderNotFound(order_id.to_owned()));
        }
        let notices = notices::list(&self.pool, id).await?;
        Ok(ListNoticesResponse { notices })
    }

    #[tracing::instrument(skip_all, fields(order_id = %order_id), err(level = "debug"))]
    pub async fn summary(&self, order_id: &str) -> Result<OrderSummary> {
        let id = parse_order_id(order_id)?;
        let state = store::state(&self.pool, id)
            .await?
            .ok_or_else(|| Error::OrderNotFound(order_id.to_owned()))?;
        let Some(stored) = state.summary else {
            return Err(Error::FailedPrecondition(format!(
                "order {order_id} not closed yet (phase {})",
                state.phase().short_name()
            )));
        };
        OrderSummary::decode(stored.as_slice()).map_err(|err| {
            Error::Inconsistent(format!("stored summary of order {order_id}: {err}"))
        })
    }

    #[tracing::instrument(skip_all, fields(order_id = %order_id), err(level = "debug"))]
    pub async fn milestones(&self, order_id: &str) -> Result<GetMilestonesResponse> {
        let today = Utc::now().date_naive();
        milestones::read(&self.pool, order_id, today).await
    }

    #[tracing::instrument(skip_all, fields(customer_id = %request.customer_id), err(level = "debug"))]
    pub async fn upsert(&self, request: &Customer) -> Result<Customer> {
        customers::upsert(&self.pool, request).await
    }

    #[tracing::instrument(skip_all, fields(customer_id = %customer_id), err(level = "debug"))]
    pub async fn customer(&self, customer_id: &str) -> Result<Customer> {
        customers::get(&self.pool, customer_id).await
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn customers(&self, request: &ListCustomersRequest) -> Result<ListCustomersResponse> {
        customers::list(&self.pool, request).await
    }
}

fn parse_order_id(order_id: &str) -> Result<Uuid> {
    Ok(validate::order_id(order_id)?)
}

fn cursor_after(order: &Order, by_slip: bool) -> Result<Cursor> {
    let created_at = order
        .created_at
        .as_ref()
        .and_then(timestamp_to)
        .ok_or_else(|| {
            Error::Inconsistent(format!("order {} has no created_at", order.order_id))
        })?;
    let order_id = Uuid::parse_str(&order.order_id)
        .map_err(|_| Error::Inconsistent(format!("stored order id {:?}", order.order_id)))?;
    Ok(Cursor {
        slip: by_slip.then_some(order.slip_days),
        created_at,
        order_id,
    })
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    type WatchOrdersStream = ReceiverStream<std::result::Result<OrderChange, Status>>;

    async fn watch_orders(
        &self,
        request: Request<WatchOrdersRequest>,
    ) -> Result<Response<Self::WatchOrdersStream>, Status> {
        self.watches
            .start(request.get_ref())
            .map(Response::new)
            .map_err(into_status)
    }

    async fn create_order(
        &self,
        request: Request<CreateOrderRequest>,
    ) -> Result<Response<CreateOrderResponse>, Status> {
        self.create(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        self.get(&request.get_ref().order_id)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn list_orders(
        &self,
        request: Request<ListOrdersRequest>,
    ) -> Result<Response<ListOrdersResponse>, Status> {
        self.list(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn get_timeline(
        &self,
        request: Request<GetTimelineRequest>,
    ) -> Result<Response<GetTimelineResponse>, Status> {
        self.timeline(&request.get_ref().order_id)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn accept_order(
        &self,
        request: Request<AcceptOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        self.accept(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn list_notices(
        &self,
        request: Request<ListNoticesRequest>,
    ) -> Result<Response<ListNoticesResponse>, Status> {
        self.notices(&request.get_ref().order_id)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn get_summary(
        &self,
        request: Request<GetSummaryRequest>,
    ) -> Result<Response<OrderSummary>, Status> {
        self.summary(&request.get_ref().order_id)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn get_milestones(
        &self,
        request: Request<GetMilestonesRequest>,
    ) -> Result<Response<GetMilestonesResponse>, Status> {
        self.milestones(&request.get_ref().order_id)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn raise_claim(
        &self,
        request: Request<RaiseClaimRequest>,
    ) -> Result<Response<Claim>, Status> {
        self.raise(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn list_claims(
        &self,
        request: Request<ListClaimsRequest>,
    ) -> Result<Response<ListClaimsResponse>, Status> {
        self.claims(&request.get_ref().order_id)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn amend_order(
        &self,
        request: Request<AmendOrderRequest>,
    ) -> Result<Response<Amendment>, Status> {
        self.amend(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn list_amendments(
        &self,
        request: Request<ListAmendmentsRequest>,
    ) -> Result<Response<ListAmendmentsResponse>, Status> {
        self.amendments(&request.get_ref().order_id)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn upsert_customer(
        &self,
        request: Request<Customer>,
    ) -> Result<Response<Customer>, Status> {
        self.upsert(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn get_customer(
        &self,
        request: Request<GetCustomerRequest>,
    ) -> Result<Response<Customer>, Status> {
        self.customer(&request.get_ref().customer_id)
            .await
            .map(Response::new)
            .map_err(into_status)
    }

    async fn list_customers(
        &self,
        request: Request<ListCustomersRequest>,
    ) -> Result<Response<ListCustomersResponse>, Status> {
        self.customers(request.get_ref())
            .await
            .map(Response::new)
            .map_err(into_status)
    }
}
