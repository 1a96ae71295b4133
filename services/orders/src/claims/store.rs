//! SQL for claims: rows in, `gendan.v1.Claim` messages out.
//!
//! Like [`crate::store`], every function takes the executor it runs on so
//! the caller decides the transaction. Callers that decide something from
//! these reads (the quantity left to claim, the claims still open) hold the
//! order's row lock ([`crate::store::lock_state`]) first: RaiseClaim,
//! ResolveClaim and AcceptOrder all take it, so they see each other's
//! claims in a consistent order.

use chrono::{DateTime, Utc};
use gendan_proto::timestamp_from;
use gendan_proto::v1::{Claim, ClaimResolution};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::validate::NewClaim;

/// The `claims` columns a [`StoredClaim`] reads; a macro so queries stay
/// `&'static str`.
macro_rules! claim_columns {
    () => {
        "claim_id, order_id, kind, product, quantity, description, evidence, raised_by, \
         raised_at, value_minor, resolution, resolution_note, resolved_at, open_claims_after"
    };
}

/// One claim as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredClaim {
    pub claim_id: Uuid,
    pub order_id: Uuid,
    /// A `ClaimKind` number.
    pub kind: i32,
    pub product: String,
    pub quantity: i64,
    pub description: String,
    pub evidence: Vec<String>,
    pub raised_by: String,
    pub raised_at: DateTime<Utc>,
    pub value_minor: i64,
    /// A `ClaimResolution` number; `None` while open.
    pub resolution: Option<i32>,
    pub resolution_note: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Claims of the order still open when this one was resolved.
    pub open_claims_after: Option<i32>,
}

impl StoredClaim {
    pub fn is_open(&self) -> bool {
        self.resolution.is_none()
    }

    pub fn to_claim(&self) -> Claim {
        Claim {
            claim_id: self.claim_id.to_string(),
            order_id: self.order_id.to_string(),
            kind: self.kind,
            product: self.product.clone(),
            // Written from a u32 and checked positive by the table.
            quantity: u32::try_from(self.quantity).unwrap_or(u32::MAX),
            description: self.description.clone(),
            evidence: self.evidence.clone(),
            raised_by: self.raised_by.clone(),
            raised_at: Some(timestamp_from(self.raised_at)),
            resolution: self
                .resolution
                .unwrap_or(ClaimResolution::Unspecified as i32),
            resolution_note: self.resolution_note.clone().unwrap_or_default(),
            resolved_at: self.resolved_at.map(timestamp_from),
            value_minor: self.value_minor,
        }
    }
}

/// The claim an earlier RaiseClaim with `client_request_id` made on the
/// order, if any.
pub async fn by_request(
    conn: &mut PgConnection,
    order_id: Uuid,
    client_request_id: &str,
) -> sqlx::Result<Option<StoredClaim>> {
    sqlx::query_as(concat!(
        "SELECT ",
        claim_columns!(),
        " FROM claims WHERE order_id = $1 AND client_request_id = $2"
    ))
    .bind(order_id)
    .bind(client_request_id)
    .fetch_optional(conn)
    .await
}

/// Units of `product` already claimed on the order, open or resolved; a
/// rejected claim gave nothing and leaves its units claimable.
pub async fn claimed_quantity(
    conn: &mut PgConnection,
    order_id: Uuid,
    product: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(quantity), 0)::BIGINT FROM claims \
         WHERE order_id = $1 AND product = $2 \
           AND resolution IS DISTINCT FROM $3",
    )
    .bind(order_id)
    .bind(product)
    .bind(gendan_proto::v1::ClaimResolution::Rejected as i32)
    .fetch_one(conn)
    .await
}

/// Inserts a new, open claim and returns it as stored.
pub async fn insert(
    conn: &mut PgConnection,
    claim_id: Uuid,
    claim: &NewClaim,
    value_minor: i64,
    raised_at: DateTime<Utc>,
) -> sqlx::Result<StoredClaim> {
    sqlx::query_as(concat!(
        "INSERT INTO claims (claim_id, order_id, client_request_id, kind, product, quantity, \
             description, evidence, raised_by, raised_at, value_minor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         RETURNING ",
        claim_columns!()
    ))
    .bind(claim_id)
    .bind(claim.order_id)
    .bind(&claim.client_request_id)
    .bind(claim.kind as i32)
    .bind(&claim.product)
    .bind(i64::from(claim.quantity))
    .bind(&claim.description)
    .bind(&claim.evidence)
    .bind(&claim.raised_by)
    .bind(raised_at)
    .bind(value_minor)
    .fetch_one(conn)
    .await
}

/// The order's claims, oldest first.
pub async fn list(executor: impl PgExecutor<'_>, order_id: Uuid) -> sqlx::Result<Vec<StoredClaim>> {
    sqlx::query_as(concat!(
        "SELECT ",
        claim_columns!(),
        " FROM claims WHERE order_id = $1 ORDER BY seq"
    ))
    .bind(order_id)
    .fetch_all(executor)
    .await
}

/// One claim of the order, locked until the transaction ends.
pub async fn lock(
    conn: &mut PgConnection,
    order_id: Uuid,
    claim_id: Uuid,
) -> sqlx::Result<Option<StoredClaim>> {
    sqlx::query_as(concat!(
        "SELECT ",
        claim_columns!(),
        " FROM claims WHERE order_id = $1 AND claim_id = $2 FOR NO KEY UPDATE"
    ))
    .bind(order_id)
    .bind(claim_id)
    .fetch_optional(conn)
    .await
}

/// Claims of the order not resolved yet.
pub async fn open_count(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM claims WHERE order_id = $1 AND resolution IS NULL")
        .bind(order_id)
        .fetch_one(conn)
        .await
}

/// What resolving a claim records.
#[derive(Debug, Clone, Copy)]
pub struct Resolution<'a> {
    pub resolution: ClaimResolution,
    pub note: &'a str,
    pub at: DateTime<Utc>,
    /// Claims of the order still open once this one is resolved.
    pub open_after: i32,
}

/// Resolves the claim once and returns it as stored; `None` when it was
/// resolved before (the caller holds the locks and has checked, so `None`
/// is a bug there).
pub async fn resolve(
    conn: &mut PgConnection,
    claim_id: Uuid,
    resolution: Resolution<'_>,
) -> sqlx::Result<Option<StoredClaim>> {
    sqlx::query_as(concat!(
        "UPDATE claims SET resolution = $2, resolution_note = $3, resolved_at = $4, \
             open_claims_after = $5 \
         WHERE claim_id = $1 AND resolution IS NULL \
         RETURNING ",
        claim_columns!()
    ))
    .bind(claim_id)
    .bind(resolution.resolution as i32)
    .bind(resolution.note)
    .bind(resolution.at)
    .bind(resolution.open_after)
    .fetch_optional(conn)
    .await
}
