//! `QuoteFreight`: what shipping the order will cost, for the review's cost
//! estimate, long before there is a packing list to book from.
//!
//! The order's goods are packed on paper by the rules `PreparePacking`
//! will follow (the customer's packing spec and the products' net
//! weights, [`packing::build`]), weighed as a booking weighs a packing list
//! ([`Load::of`]), and priced by the lane a booking would choose
//! ([`booking::choose`]) from the ready date (today when it has passed) to
//! `deliver_by` (the order's requested delivery date when empty), in the
//! order's currency. `FreightQuoted` answers with the lane and its freight,
//! the ETD and ETA a booking on the ready date would get, and the lane's
//! rule (weekday, cut-off, transit) that moves them when the ready date
//! does.
//!
//! Nothing is stored and nothing is locked: a re-sent command quotes again
//! from the master data as it is then, under a new event id. When freight
//! cannot be quoted (no packing spec for the customer, a product without a
//! net weight, a carton over the customer's weight limit, no lane that can
//! be priced) the answer is still `FreightQuoted`, with 0 in the order's
//! currency and `problem` saying why: the estimate goes on without
//! freight and names what is missing. Only a malformed command (no order,
//! no lines, a date that is not one) is rejected, with the field named.

use std::collections::HashMap;

use chrono::NaiveDate;
use gendan_messaging::{HandlerError, Incoming};
use gendan_proto::date_to_string;
use gendan_proto::v1::{FreightQuoted, QuoteFreight};
use sqlx::PgConnection;

use super::packing_list::no_spec;
use super::shipment::shipping_dates;
use super::{answer, invalid};
use crate::booking::{self, Lane, Load, Quote};
use crate::clock::Clock;
use crate::documents::OrderData;
use crate::packing::{self, Spec};
use crate::{catalog, validate};

#[tracing::instrument(skip_all, fields(order_id = %message.order_id(), revision = command.revision))]
pub(super) async fn quote_freight(
    conn: &mut PgConnection,
    message: &Incoming,
    command: QuoteFreight,
    clock: &dyn Clock,
) -> Result<(), HandlerError> {
    let order = validate::order(command.order.as_ref(), "order").map_err(invalid)?;
    let order_id = message.order_id_or(&order.order_id)?;
    let (ready, deliver_by) = shipping_dates(
        command.order.as_ref(),
        &command.ready_date,
        &command.deliver_by,
    )?;
    // As for a booking: no lane departs in the past.
    let from = ready.max(clock.today());
    let spec = catalog::spec_of_customer(conn, &order.customer_id, &order.customer).await?;
    let products: Vec<String> = order.lines.iter().map(|l| l.product.clone()).collect();
    let weights: HashMap<String, f64> = catalog::products(conn, &products)
        .await?
        .into_iter()
        .map(|(product, record)| (product, record.unit_net_weight_kg))
        .collect();
    let lanes = catalog::lanes(conn).await?;
    let quoted = quote(&order, spec.as_ref(), &weights, &lanes, from, deliver_by);
    let answer_event = freight_quoted(&order_id, command.revision, &order.currency, quoted);
    if answer_event.problem.is_empty() {
        tracing::info!(
            lane = %answer_event.lane_code,
            freight_cost_minor = answer_event.freight_cost_minor,
            currency = %answer_event.currency,
            "freight quoted"
        );
    } else {
        tracing::warn!(problem = %answer_event.problem, "freight cannot be quoted");
    }
    answer(conn, message, &order_id, &answer_event).await
}

/// The lane a booking would choose for `order`'s goods packed by `spec`
/// (`unit_net_kg`: the products whose net weight is known), ready on
/// `ready`, to arrive by `deliver_by`; or why freight cannot be quoted.
fn quote(
    order: &OrderData,
    spec: Option<&Spec>,
    unit_net_kg: &HashMap<String, f64>,
    lanes: &[Lane],
    ready: NaiveDate,
    deliver_by: NaiveDate,
) -> Result<Quote, String> {
    let Some(spec) = spec else {
        return Err(no_spec(order));
    };
    let items = packing::merge_lines(order.lines.iter().map(|l| (l.product.as_str(), l.quantity)))?;
    // A booking would leave the lanes billed by weight out; a quote that
    // did so could be far from what the order will pay, so it says so.
    let unweighed: Vec<String> = items
        .iter()
        .filter(|(product, _)| !unit_net_kg.contains_key(product))
        .map(|(product, _)| format!("{product:?}"))
        .collect();
    if !unweighed.is_empty() {
        return Err(format!(
            "no net weight for product {}; enter it with UpsertProductMaster",
            unweighed.join(", ")
        ));
    }
    let cartons = packing::build(&order.order_id, spec, &items, unit_net_kg)?;
    booking::choose(
        lanes,
        Load::of(&cartons),
        ready,
        deliver_by,
        &order.currency,
    )
    .map_err(|no_lane| no_lane.0)
}

/// The wire form of a quote of `revision`: the lane and its freight, or 0
/// in the order's `currency` with the problem.
fn freight_quoted(
    order_id: &str,
    revision: u32,
    currency: &str,
    quoted: Result<Quote, String>,
) -> FreightQuoted {
    match quoted {
        Ok(quote) => FreightQuoted {
            order_id: order_id.to_owned(),
            revision,
            freight_cost_minor: quote.cost_minor,
            // The lane's: without a lane in the order's currency, booking
            // uses lanes that share another one.
            currency: quote.lane.currency,
            lane_code: quote.lane.code,
            carrier: quote.lane.carrier,
            mode: quote.lane.mode.name().to_owned(),
            problem: String::new(),
            etd: date_to_string(quote.etd),
            eta: date_to_string(quote.eta),
            transit_days: quote.lane.transit_days,
            cutoff_days: quote.lane.cutoff_days,
            departure_weekday: quote.lane.departure_weekday,
        },
        Err(problem) => FreightQuoted {
            order_id: order_id.to_owned(),
            revision,
            freight_cost_minor: 0,
            currency: currency.to_owned(),
            problem,
            ..FreightQuoted::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::booking::{CostBasis, Mode};
    use crate::documents::OrderLineData;
    use crate::packing::Barcode;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn order(lines: &[(&str, u32)]) -> OrderData {
        OrderData {
            order_id: "0190a0b0-0000-7000-8000-000000000001".into(),
            customer: "Nordwind GmbH".into(),
            customer_id: "CUST-7".into(),
            currency: "USD".into(),
            incoterm: "FOB".into(),
            payment_terms: String::new(),
            export: true,
            lines: lines
                .iter()
                .map(|(product, quantity)| OrderLineData {
                    product: (*product).into(),
                    spec: String::new(),
                    quantity: *quantity,
                    unit_price_minor: 1_000,
                })
                .collect(),
            total_minor: 0,
        }
    }

    fn spec() -> Spec {
        Spec {
            customer: "Nordwind GmbH".into(),
            default_units_per_carton: 24,
            units_per_carton: BTreeMap::new(),
            marks_template: "{customer} C/NO {carton}/{total}".into(),
            barcode: Barcode::Ean13,
            max_gross_weight_kg: 20.0,
            carton_tare_kg: 0.8,
        }
    }

    fn lane(code: &str, mode: Mode, weekday: u32, transit: u32, basis: CostBasis) -> Lane {
        Lane {
            code: code.into(),
            carrier: format!("{code} line"),
            mode,
            departure_weekday: weekday,
            transit_days: transit,
            cutoff_days: 2,
            cost_basis: basis,
            rate_minor: 300,
            currency: "USD".into(),
        }
    }

    fn lanes() -> Vec<Lane> {
        vec![
            // Wednesdays, 3 days: 2026-03-04 → 2026-03-07.
            lane("AIR", Mode::Air, 3, 3, CostBasis::PerKg),
            // Fridays, 30 days: 2026-03-06 → 2026-04-05.
            lane("SEA", Mode::Sea, 5, 30, CostBasis::PerCarton),
        ]
    }

    const READY: &str = "2026-03-02";

    #[test]
    fn the_goods_are_weighed_as_their_packing_list_would_be() {
        let weights = HashMap::from([("shirt".to_owned(), 0.25)]);
        // 50 shirts: cartons of 24, 24 and 2; 6.8 + 6.8 + 1.3 kg.
        let cartons = packing::build("o", &spec(), &[("shirt".to_owned(), 50)], &weights).unwrap();
        assert_eq!(
            Load::of(&cartons),
            Load {
                cartons: 3,
                gross_weight_kg: 14.9
            }
        );

        let quoted = quote(
            &order(&[("shirt", 30), ("shirt", 20)]),
            Some(&spec()),
            &weights,
            &lanes(),
            date(READY),
            date("2026-03-20"),
        );
        let answer = freight_quoted("o", 2, "USD", quoted);
        // Only air arrives in time: 15 started kg at 3.00, leaving on
        // Wednesday and arriving three days later.
        assert_eq!(
            answer,
            FreightQuoted {
                order_id: "o".into(),
                revision: 2,
                freight_cost_minor: 15 * 300,
                currency: "USD".into(),
                lane_code: "AIR".into(),
                carrier: "AIR line".into(),
                mode: "air".into(),
                problem: String::new(),
                etd: "2026-03-04".into(),
                eta: "2026-03-07".into(),
                transit_days: 3,
                cutoff_days: 2,
                departure_weekday: 3,
            }
        );
    }

    #[test]
    fn the_cheapest_lane_in_time_is_quoted() {
        let weights = HashMap::from([("shirt".to_owned(), 0.25)]);
        let quoted = quote(
            &order(&[("shirt", 50)]),
            Some(&spec()),
            &weights,
            &lanes(),
            date(READY),
            date("2026-05-01"),
        )
        .unwrap();
        // 3 cartons at 3.00 by sea beat 15 kg at 3.00 by air.
        assert_eq!(quoted.lane.code, "SEA");
        assert_eq!(quoted.cost_minor, 900);
    }

    #[test]
    fn what_is_missing_is_the_problem_with_nothing_quoted() {
        let weights = HashMap::from([("shirt".to_owned(), 0.25)]);
        let far = date("2026-05-01");
        let no_spec = quote(
            &order(&[("shirt", 50)]),
            None,
            &weights,
            &lanes(),
            date(READY),
            far,
        );
        let answer = freight_quoted("o", 1, "EUR", no_spec);
        assert_eq!(answer.freight_cost_minor, 0);
        assert_eq!(answer.currency, "EUR");
        assert_eq!(answer.lane_code, "");
        assert!(
            answer
                .problem
                .starts_with("no packing spec for customer \"CUST-7\""),
            "{}",
            answer.problem
        );

        let unweighed = quote(
            &order(&[("shirt", 50), ("jacket", 5)]),
            Some(&spec()),
            &weights,
            &lanes(),
            date(READY),
            far,
        )
        .unwrap_err();
        assert_eq!(
            unweighed,
            "no net weight for product \"jacket\"; enter it with UpsertProductMaster"
        );

        let no_lanes = quote(
            &order(&[("shirt", 50)]),
            Some(&spec()),
            &weights,
            &[],
            date(READY),
            far,
        )
        .unwrap_err();
        assert_eq!(no_lanes, "no carrier lanes are configured");

        let heavy = HashMap::from([("shirt".to_owned(), 1.0)]);
        let over_limit = quote(
            &order(&[("shirt", 50)]),
            Some(&spec()),
            &heavy,
            &lanes(),
            date(READY),
            far,
        )
        .unwrap_err();
        assert!(
            over_limit.contains("over the customer's maximum"),
            "{over_limit}"
        );
    }
}
