//! `gendan orders amend` and `gendan orders amendments`: the customer's
//! amendments of an order, entered by the merchandiser (AmendOrder) and
//! listed oldest first (ListAmendments). The commands are variants of
//! [`crate::cli::OrdersCommand`]; this module holds their arguments, the
//! calls and the printing, with the table and JSON helpers of
//! [`crate::cli`].
//!
//! AmendOrder takes the order's lines complete; the command takes only what
//! changes: `--line PRODUCT:QTY[:UNIT_PRICE_MINOR[:SPEC]]` sets one
//! product's line (added when the order has none; the price and spec stay
//! as they are when left out), `--remove PRODUCT` removes one, the other
//! lines stay as they are. It reads the order (GetOrder), builds the full
//! list ([`amended_lines`]) and sends it.

use anyhow::Context;
use clap::Args;
use gendan_proto::v1::{self, OrderLine, Phase};
use serde_json::{Value, json};

use crate::claims_cli::OrdersClient;
use crate::cli::{Output, dash, money, print_json, print_pairs, print_table, status_error};
use crate::retry::rpc;

// No doc comment: clap would show it instead of the subcommand's own help.
#[derive(Debug, Args)]
pub struct AmendArgs {
    /// The order to amend (until its goods ship).
    pub order_id: String,
    /// Sets a product's line, PRODUCT:QTY[:UNIT_PRICE_MINOR[:SPEC]]; a new
    /// product is added (it needs a price); repeat for several.
    #[arg(long = "line", value_name = "PRODUCT:QTY[:UNIT_PRICE_MINOR[:SPEC]]")]
    pub lines: Vec<String>,
    /// Removes a product's line; repeat for several.
    #[arg(long = "remove", value_name = "PRODUCT")]
    pub removes: Vec<String>,
    /// The new requested delivery date, YYYY-MM-DD (default: unchanged).
    #[arg(long)]
    pub date: Option<String>,
    /// Why (up to 500 characters), e.g. "customer PO rev B".
    #[arg(long)]
    pub reason: String,
    /// Who asked on the customer's side, or who entered it.
    #[arg(long)]
    pub by: String,
    /// Idempotency key: the same key twice makes one amendment (default: a
    /// new key, so running the command twice amends twice).
    #[arg(long)]
    pub request_id: Option<String>,
}

/// One `--line` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineArg {
    pub product: String,
    pub quantity: u32,
    /// `None`: the line's current price.
    pub unit_price_minor: Option<i64>,
    /// `None`: the line's current spec.
    pub spec: Option<String>,
}

/// Parses `PRODUCT:QTY[:UNIT_PRICE_MINOR[:SPEC]]` (the spec may contain
/// `:`).
pub fn parse_line(text: &str) -> anyhow::Result<LineArg> {
    let mut parts = text.splitn(4, ':');
    let product = parts.next().unwrap_or_default().trim();
    if product.is_empty() {
        anyhow::bail!(
            "--line {text:?}: the product is missing (PRODUCT:QTY[:UNIT_PRICE_MINOR[:SPEC]])"
        );
    }
    let quantity = parts
        .next()
        .with_context(|| format!("--line {text:?}: the quantity is missing"))?
        .trim()
        .parse::<u32>()
        .with_context(|| format!("--line {text:?}: the quantity is not a whole number"))?;
    let unit_price_minor = match parts.next().map(str::trim) {
        None | Some("") => None,
        Some(price) => Some(price.parse::<i64>().with_context(|| {
            format!("--line {text:?}: the unit price (minor units) is not a whole number")
        })?),
    };
    let spec = parts.next().map(str::to_owned);
    Ok(LineArg {
        product: product.to_owned(),
        quantity,
        unit_price_minor,
        spec,
    })
}

/// The order's lines after the amendment: `current` with each product of
/// `removes` taken out and each of `lines` set (in place of the product's
/// first line, its other lines dropped; at the end when new).
pub fn amended_lines(
    current: &[OrderLine],
    lines: &[LineArg],
    removes: &[String],
) -> anyhow::Result<Vec<OrderLine>> {
    let mut result: Vec<OrderLine> = current.to_vec();
    for product in removes {
        let product = product.trim();
        if !result.iter().any(|line| line.product == product) {
            anyhow::bail!("--remove {product}: the order has no line of {product}");
        }
        result.retain(|line| line.product != product);
    }
    for line in lines {
        if removes.iter().any(|removed| removed.trim() == line.product) {
            anyhow::bail!(
                "{} is both set with --line and removed with --remove",
                line.product
            );
        }
        match result.iter().position(|l| l.product == line.product) {
            Some(first) => {
                let kept = &result[first];
                let updated = OrderLine {
                    product: line.product.clone(),
                    spec: line.spec.clone().unwrap_or_else(|| kept.spec.clone()),
                    quantity: line.quantity,
                    unit_price_minor: line.unit_price_minor.unwrap_or(kept.unit_price_minor),
                };
                result[first] = updated;
                let mut index = 0;
                result.retain(|l| {
                    index += 1;
                    index - 1 == first || l.product != line.product
                });
            }
            None => {
                let unit_price_minor = line.unit_price_minor.with_context(|| {
                    format!(
                        "--line {}: a new product needs its unit price \
                         (PRODUCT:QTY:UNIT_PRICE_MINOR)",
                        line.product
                    )
                })?;
                result.push(OrderLine {
                    product: line.product.clone(),
                    spec: line.spec.clone().unwrap_or_default(),
                    quantity: line.quantity,
                    unit_price_minor,
                });
            }
        }
    }
    Ok(result)
}

/// `gendan orders amend …`: amends the order and prints the amendment with
/// what it changed.
pub async fn amend(
    orders: &mut OrdersClient,
    args: AmendArgs,
    output: Output,
) -> anyhow::Result<()> {
    if args.lines.is_empty() && args.removes.is_empty() && args.date.is_none() {
        anyhow::bail!("nothing to amend: give --line, --remove or --date");
    }
    let line_args = args
        .lines
        .iter()
        .map(String::as_str)
        .map(parse_line)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let order = rpc!(
        orders,
        get_order,
        v1::GetOrderRequest {
            order_id: args.order_id.clone(),
        }
    )
    .map_err(status_error)?;
    let lines = amended_lines(&order.lines, &line_args, &args.removes)?;
    let request = v1::AmendOrderRequest {
        order_id: args.order_id,
        client_request_id: args
            .request_id
            .unwrap_or_else(|| format!("cli-{}", uuid::Uuid::now_v7().simple())),
        lines,
        requested_delivery_date: args.date.unwrap_or_default(),
        reason: args.reason,
        requested_by: args.by,
    };
    let amendment = rpc!(orders, amend_order, request).map_err(status_error)?;
    match output {
        Output::Json => print_json(&amendment_json(&amendment, &order.currency)),
        Output::Table => {
            print_pairs(&json!({
                "order_id": amendment.order_id,
                "amendment": amendment.number,
                "phase": phase_name(amendment.phase),
                "requested_by": amendment.requested_by,
                "reason": amendment.reason,
                "total": format!(
                    "{} → {}",
                    money(amendment.total_before_minor, &order.currency),
                    money(amendment.total_after_minor, &order.currency)
                ),
                "requested_date": format!(
                    "{} → {}",
                    amendment.requested_date_before, amendment.requested_date_after
                ),
            }));
            print_table(
                &["changes"],
                amendment.changes.iter().map(|c| vec![c.clone()]).collect(),
            );
        }
    }
    Ok(())
}

/// `gendan orders amendments <order id>`: the order's amendments, oldest
/// first.
pub async fn list(
    orders: &mut OrdersClient,
    order_id: String,
    output: Output,
) -> anyhow::Result<()> {
    let amendments = rpc!(
        orders,
        list_amendments,
        v1::ListAmendmentsRequest {
            order_id: order_id.clone(),
        }
    )
    .map_err(status_error)?
    .amendments;
    let currency = orders
        .get_order(v1::GetOrderRequest { order_id })
        .await
        .map(|order| order.into_inner().currency)
        .unwrap_or_default();
    match output {
        Output::Json => print_json(&Value::Array(
            amendments
                .iter()
                .map(|a| amendment_json(a, &currency))
                .collect(),
        )),
        Output::Table => print_table(
            &[
                "no", "amended", "phase", "by", "reason", "total", "date", "changes",
            ],
            amendments
                .iter()
                .map(|a| {
                    vec![
                        a.number.to_string(),
                        when(a.amended_at.as_ref()),
                        phase_name(a.phase).to_owned(),
                        a.requested_by.clone(),
                        a.reason.clone(),
                        format!(
                            "{} → {}",
                            money(a.total_before_minor, &currency),
                            money(a.total_after_minor, &currency)
                        ),
                        dash(&a.requested_date_after),
                        a.changes.join("; "),
                    ]
                })
                .collect(),
        ),
    }
    Ok(())
}

fn amendment_json(amendment: &v1::Amendment, currency: &str) -> Value {
    let lines = |lines: &[OrderLine]| {
        lines
            .iter()
            .map(|l| {
                json!({
                    "product": l.product, "spec": l.spec, "quantity": l.quantity,
                    "unit_price_minor": l.unit_price_minor,
                })
            })
            .collect::<Vec<_>>()
    };
    json!({
        "amendment_id": amendment.amendment_id,
        "order_id": amendment.order_id,
        "number": amendment.number,
        "reason": amendment.reason,
        "requested_by": amendment.requested_by,
        "amended_at": amendment
            .amended_at
            .as_ref()
            .and_then(gendan_proto::timestamp_to)
            .map(|t| t.to_rfc3339()),
        "phase": phase_name(amendment.phase),
        "lines_before": lines(&amendment.lines_before),
        "lines_after": lines(&amendment.lines_after),
        "requested_date_before": amendment.requested_date_before,
        "requested_date_after": amendment.requested_date_after,
        "total_before": money(amendment.total_before_minor, currency),
        "total_after": money(amendment.total_after_minor, currency),
        "changes": amendment.changes,
    })
}

fn phase_name(phase: i32) -> &'static str {
    Phase::try_from(phase)
        .unwrap_or(Phase::Unspecified)
        .short_name()
}

fn when(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(gendan_proto::timestamp_to)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(product: &str, spec: &str, quantity: u32, unit_price_minor: i64) -> OrderLine {
        OrderLine {
            product: product.to_owned(),
            spec: spec.to_owned(),
            quantity,
            unit_price_minor,
        }
    }

    #[test]
    fn line_arguments_parse_with_optional_price_and_spec() {
        assert_eq!(
            parse_line("SHIRT-01:120").unwrap(),
            LineArg {
                product: "SHIRT-01".to_owned(),
                quantity: 120,
                unit_price_minor: None,
                spec: None,
            }
        );
        let full = parse_line("SHIRT-01:120:1250:navy: size M").unwrap();
        assert_eq!(full.unit_price_minor, Some(1250));
        assert_eq!(full.spec.as_deref(), Some("navy: size M"));
        assert_eq!(
            parse_line("SHIRT-01:120::navy").unwrap().unit_price_minor,
            None
        );
        for bad in [
            "",
            ":1",
            "SHIRT-01",
            "SHIRT-01:x",
            "SHIRT-01:-1",
            "SHIRT-01:1:1.50",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn named_products_change_and_the_rest_stay() {
        let current = vec![
            line("SHIRT-01", "blue", 100, 1200),
            line("CAP-03", "", 40, 300),
            line("SOCK-04", "", 10, 100),
        ];
        let lines = amended_lines(
            &current,
            &[
                parse_line("SHIRT-01:120").unwrap(),
                parse_line("TROUSER-02:50:2000:slim").unwrap(),
            ],
            &["CAP-03".to_owned()],
        )
        .unwrap();
        assert_eq!(
            lines,
            vec![
                line("SHIRT-01", "blue", 120, 1200),
                line("SOCK-04", "", 10, 100),
                line("TROUSER-02", "slim", 50, 2000),
            ]
        );
    }

    #[test]
    fn a_product_on_several_lines_becomes_one() {
        let current = vec![
            line("BRKT-100", "zinc", 10, 125),
            line("BRKT-200", "", 5, 5000),
            line("BRKT-100", "second delivery", 4, 125),
        ];
        let lines = amended_lines(&current, &[parse_line("BRKT-100:14").unwrap()], &[]).unwrap();
        assert_eq!(
            lines,
            vec![
                line("BRKT-100", "zinc", 14, 125),
                line("BRKT-200", "", 5, 5000)
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        let current = vec![line("SHIRT-01", "blue", 100, 1200)];
        let unknown = amended_lines(&current, &[], &["CAP-03".to_owned()]).unwrap_err();
        assert!(
            unknown.to_string().contains("no line of CAP-03"),
            "{unknown}"
        );
        let unpriced =
            amended_lines(&current, &[parse_line("CAP-03:5").unwrap()], &[]).unwrap_err();
        assert!(unpriced.to_string().contains("unit price"), "{unpriced}");
        let both = amended_lines(
            &current,
            &[parse_line("SHIRT-01:5").unwrap()],
            &["SHIRT-01".to_owned()],
        )
        .unwrap_err();
        assert!(both.to_string().contains("both"), "{both}");
    }
}
