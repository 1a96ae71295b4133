//! `gendan orders claim` and `gendan orders claims`: the customer's claims
//! on delivered goods, raised for them by the merchandiser (RaiseClaim) and
//! listed with how each was resolved (ListClaims). The commands are
//! variants of [`crate::cli::OrdersCommand`]; this module holds their
//! arguments, the calls and the printing, with the table and JSON helpers
//! of [`crate::cli`].

use clap::{Args, ValueEnum};
use gendan_proto::v1::{self, ClaimKind, ClaimResolution};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::cli::{Output, dash, money, print_json, print_pairs, print_table, status_error};
use crate::retry::rpc;

/// The orders client the `orders` commands share.
pub type OrdersClient = v1::order_service_client::OrderServiceClient<Channel>;

// No doc comment: clap would show it instead of the subcommand's own help.
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// The order whose delivered goods are claimed (phase acceptance).
    #[arg(long)]
    pub order: String,
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// A product of the order's lines.
    #[arg(long)]
    pub product: String,
    /// Units claimed, at most the line's quantity less what is claimed already.
    #[arg(long)]
    pub quantity: u32,
    /// What is wrong (up to 2000 characters).
    #[arg(long)]
    pub description: String,
    /// A photo, report or surveyor reference; repeat for several (up to 20).
    #[arg(long)]
    pub evidence: Vec<String>,
    /// Who claims on the customer's side.
    #[arg(long)]
    pub raised_by: String,
    /// Idempotency key: the same key twice raises one claim (default: a new
    /// key, so running the command twice raises two claims).
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Shortage,
    Damage,
    Quality,
    WrongItem,
}

impl From<KindArg> for ClaimKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Shortage => ClaimKind::Shortage,
            KindArg::Damage => ClaimKind::Damage,
            KindArg::Quality => ClaimKind::Quality,
            KindArg::WrongItem => ClaimKind::WrongItem,
        }
    }
}

/// `gendan orders claim …`: raises the claim and prints it.
pub async fn raise(
    orders: &mut OrdersClient,
    args: ClaimArgs,
    output: Output,
) -> anyhow::Result<()> {
    let request = v1::RaiseClaimRequest {
        order_id: args.order.clone(),
        client_request_id: args
            .key
            .unwrap_or_else(|| format!("cli-{}", uuid::Uuid::now_v7().simple())),
        kind: ClaimKind::from(args.kind) as i32,
        product: args.product,
        quantity: args.quantity,
        description: args.description,
        evidence: args.evidence,
        raised_by: args.raised_by,
    };
    let claim = rpc!(orders, raise_claim, request).map_err(status_error)?;
    let currency = currency_of(orders, &args.order).await;
    match output {
        Output::Json => print_json(&claim_json(&claim, &currency)),
        Output::Table => print_pairs(&claim_json(&claim, &currency)),
    }
    Ok(())
}

/// `gendan orders claims <order id>`: the order's claims, oldest first.
pub async fn list(
    orders: &mut OrdersClient,
    order_id: String,
    output: Output,
) -> anyhow::Result<()> {
    let claims = rpc!(
        orders,
        list_claims,
        v1::ListClaimsRequest {
            order_id: order_id.clone(),
        }
    )
    .map_err(status_error)?
    .claims;
    let currency = currency_of(orders, &order_id).await;
    match output {
        Output::Json => print_json(&Value::Array(
            claims.iter().map(|c| claim_json(c, &currency)).collect(),
        )),
        Output::Table => print_table(
            &[
                "claim",
                "kind",
                "product",
                "qty",
                "value",
                "raised by",
                "raised",
                "resolution",
                "note",
            ],
            claims
                .iter()
                .map(|c| {
                    vec![
                        c.claim_id.clone(),
                        kind_name(c.kind()),
                        c.product.clone(),
                        c.quantity.to_string(),
                        money(c.value_minor, &currency),
                        c.raised_by.clone(),
                        date_of(c.raised_at.as_ref()),
                        resolution_name(c.resolution()),
                        dash(&c.resolution_note),
                    ]
                })
                .collect(),
        ),
    }
    Ok(())
}

/// The order's currency for the value column; a claim raised or listed is
/// shown even when the order cannot be read back (an empty currency).
async fn currency_of(orders: &mut OrdersClient, order_id: &str) -> String {
    orders
        .get_order(v1::GetOrderRequest {
            order_id: order_id.to_owned(),
        })
        .await
        .map(|order| order.into_inner().currency)
        .unwrap_or_default()
}

fn claim_json(claim: &v1::Claim, currency: &str) -> Value {
    json!({
        "claim_id": claim.claim_id,
        "order_id": claim.order_id,
        "kind": kind_name(claim.kind()),
        "product": claim.product,
        "quantity": claim.quantity,
        "value": money(claim.value_minor, currency),
        "value_minor": claim.value_minor,
        "description": claim.description,
        "evidence": claim.evidence,
        "raised_by": claim.raised_by,
        "raised_at": timestamp_text(claim.raised_at.as_ref()),
        "resolution": resolution_name(claim.resolution()),
        "resolution_note": claim.resolution_note,
        "resolved_at": timestamp_text(claim.resolved_at.as_ref()),
    })
}

/// `CLAIM_KIND_WRONG_ITEM` → `wrong_item` (the `--kind` spelling but with `_`).
fn kind_name(kind: ClaimKind) -> String {
    kind.short_name()
}

/// `CLAIM_RESOLUTION_CREDIT_NOTE` → `credit_note`; `open` while unresolved.
fn resolution_name(resolution: ClaimResolution) -> String {
    match resolution {
        ClaimResolution::Unspecified => "open".to_owned(),
        other => other
            .as_str_name()
            .trim_start_matches("CLAIM_RESOLUTION_")
            .to_lowercase(),
    }
}

fn timestamp_text(at: Option<&prost_types::Timestamp>) -> Option<String> {
    at.and_then(gendan_proto::timestamp_to)
        .map(|t| t.to_rfc3339())
}

fn date_of(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(gendan_proto::timestamp_to)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_cli_spelling() {
        assert_eq!(kind_name(ClaimKind::from(KindArg::WrongItem)), "wrong_item");
        assert_eq!(resolution_name(ClaimResolution::CreditNote), "credit_note");
        assert_eq!(resolution_name(ClaimResolution::Unspecified), "open");
    }
}
