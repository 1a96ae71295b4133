//! Work-centre capacity for a bench run, so that any number of orders
//! finishes.
//!
//! The demo catalogue's factory (production's `seed_demo_catalog`) is sized
//! for a demo of ten orders: 80 sewing hours a day, six days a week.
//! Production books every planned order's hours on the days ahead and gives
//! back what lies after a work order's completion day only when the MES
//! completes it; an order whose hours do not fit within the planning
//! horizon (three years) cannot be planned, and a bench waiting for it
//! would wait for ever. Three hundred orders created at once did exactly
//! that.
//!
//! The scaling rule. The bench keeps at most `in_flight` orders open (the
//! closed loop, `min(concurrency, orders)`), and every order completes on
//! the day it runs (the simulators work at full speed on the real
//! calendar), so what is booked ahead at any moment is at most the
//! `in_flight` orders with the most hours at each centre: their sum is the
//! centre's peak. Hours are production's own rule on its own routings
//! (`GetRouting`): per order line and stage, quantity × hours per unit plus
//! the stage's set-up. Each centre gets
//! `max(catalogue hours, peak / WINDOW_WORKING_DAYS)` hours a day (at most
//! production's limit of 100 000), so the peak is done within two working
//! weeks: well inside the shortest sample lead time (45 days, less up to 12
//! for materials), so the bench's own load never makes an order late and
//! the orders take the happy path, not a delivery-date clarification (every
//! fifth sample order asks for two days and takes it anyway).
//!
//! Load left on the database by earlier runs (a run stopped by its timeout
//! leaves work orders open) is seen from outside production only through
//! `CheckCapacity`: the heaviest `in_flight` orders are checked from today,
//! and while they would end more than [`WINDOW_DAYS`] days out the hours
//! are doubled, up to [`DOUBLINGS`] times; past that the run goes on with a
//! warning. The catalogue's hours are put back when the run ends; the
//! bench's bookings stay on the days they were made.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use gendan_proto::v1::{self, CreateOrderRequest, RoutingStage, WorkCentre};

use crate::sim::Clients;

/// Working days the peak load of the orders in flight must fit in.
const WINDOW_WORKING_DAYS: f64 = 10.0;
/// Calendar days from today by which `CheckCapacity` must see the heaviest
/// orders in flight done: the window plus its Sundays and some slack.
const WINDOW_DAYS: u64 = 14;
/// Production refuses more hours a day than this (its validation).
const MAX_HOURS_PER_DAY: f64 = 100_000.0;
/// Times the hours may be doubled against load left by earlier runs.
const DOUBLINGS: usize = 4;

/// One work centre: as the catalogue had it, and its hours for the run.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) catalogue: WorkCentre,
    /// Hours the heaviest orders in flight need there.
    pub(super) peak_hours: f64,
    pub(super) hours_per_day: f64,
}

/// The capacity a run works with.
#[derive(Debug, Clone)]
pub(super) struct Raised {
    pub(super) lines: Vec<Line>,
    /// Why the heaviest orders in flight still do not fit, if they do not.
    misfit: Option<String>,
}

impl Raised {
    /// What to tell the person running the bench when the orders may not
    /// take the happy path.
    pub(super) fn warning(&self) -> Option<String> {
        self.misfit.as_ref().map(|why| {
            format!(
                "warning: work-centre capacity could not be raised enough ({why}); \
                 orders may wait for delivery-date decisions"
            )
        })
    }

    /// Puts the catalogue's hours back.
    pub(super) async fn restore(&self, clients: &Clients) -> anyhow::Result<()> {
        let mut production = clients.production.clone();
        for line in &self.lines {
            production
                .upsert_work_centre(line.catalogue.clone())
                .await
                .with_context(|| format!("production: work centre {}", line.catalogue.code))?;
        }
        Ok(())
    }
}

/// Raises every work centre to what `orders`, `in_flight` at a time, need
/// (see the module's rule).
pub(super) async fn raise(
    clients: &Clients,
    orders: &[CreateOrderRequest],
    in_flight: usize,
) -> anyhow::Result<Raised> {
    let mut production = clients.production.clone();
    let routings = routings(clients, orders).await?;
    let per_order: Vec<HashMap<String, f64>> = orders
        .iter()
        .map(|order| order_hours(order, &routings))
        .collect();
    let centres = production
        .list_work_centres(v1::ListWorkCentresRequest {})
        .await
        .context("production: work centres")?
        .into_inner()
        .work_centres;
    let mut lines: Vec<Line> = centres
        .into_iter()
        .map(|catalogue| {
            let peak_hours = peak(&per_order, &catalogue.code, in_flight);
            let hours_per_day = (peak_hours / WINDOW_WORKING_DAYS)
                .max(catalogue.hours_per_day)
                .min(MAX_HOURS_PER_DAY);
            Line {
                catalogue,
                peak_hours,
                hours_per_day,
            }
        })
        .collect();
    let heaviest = heaviest_items(orders, &per_order, in_flight);
    let mut misfit = None;
    for doubling in 0..=DOUBLINGS {
        apply(clients, &lines).await?;
        misfit = misfit_of(clients, &heaviest).await;
        if misfit.is_none() || doubling == DOUBLINGS {
            break;
        }
        for line in lines.iter_mut().filter(|line| line.peak_hours > 0.0) {
            line.hours_per_day = (line.hours_per_day * 2.0).min(MAX_HOURS_PER_DAY);
        }
    }
    Ok(Raised { lines, misfit })
}

async fn apply(clients: &Clients, lines: &[Line]) -> anyhow::Result<()> {
    let mut production = clients.production.clone();
    for line in lines {
        production
            .upsert_work_centre(WorkCentre {
                hours_per_day: line.hours_per_day,
                ..line.catalogue.clone()
            })
            .await
            .with_context(|| format!("production: work centre {}", line.catalogue.code))?;
    }
    Ok(())
}

/// The routing of every product the orders name.
async fn routings(
    clients: &Clients,
    orders: &[CreateOrderRequest],
) -> anyhow::Result<HashMap<String, Vec<RoutingStage>>> {
    let mut production = clients.production.clone();
    let mut routings = HashMap::new();
    for line in orders.iter().flat_map(|order| &order.lines) {
        if routings.contains_key(&line.product) {
            continue;
        }
        let routing = production
            .get_routing(v1::GetRoutingRequest {
                product: line.product.clone(),
            })
            .await
            .with_context(|| format!("production: routing of {}", line.product))?
            .into_inner();
        routings.insert(line.product.clone(), routing.stages);
    }
    Ok(routings)
}

/// Hours per work centre one order books, by production's rule: per line
/// and stage, quantity × hours per unit plus one set-up.
fn order_hours(
    order: &CreateOrderRequest,
    routings: &HashMap<String, Vec<RoutingStage>>,
) -> HashMap<String, f64> {
    let mut hours: HashMap<String, f64> = HashMap::new();
    for line in order.lines.iter().filter(|line| line.quantity > 0) {
        for stage in routings.get(&line.product).into_iter().flatten() {
            *hours.entry(stage.work_centre.clone()).or_default() +=
                f64::from(line.quantity) * stage.hours_per_unit + stage.setup_hours;
        }
    }
    hours
}

/// The hours the `in_flight` orders heaviest at `centre` need there.
fn peak(per_order: &[HashMap<String, f64>], centre: &str, in_flight: usize) -> f64 {
    let mut hours: Vec<f64> = per_order
        .iter()
        .filter_map(|order| order.get(centre).copied())
        .collect();
    hours.sort_by(|a, b| b.total_cmp(a));
    hours.iter().take(in_flight).sum()
}

/// The products and quantities of the `in_flight` orders with the most
/// hours in all, merged by product, for `CheckCapacity`.
fn heaviest_items(
    orders: &[CreateOrderRequest],
    per_order: &[HashMap<String, f64>],
    in_flight: usize,
) -> Vec<v1::ProductQuantity> {
    let mut by_weight: Vec<(f64, &CreateOrderRequest)> = per_order
        .iter()
        .map(|hours| hours.values().sum::<f64>())
        .zip(orders)
        .collect();
    by_weight.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut merged: BTreeMap<&str, u32> = BTreeMap::new();
    for (_, order) in by_weight.into_iter().take(in_flight) {
        for line in &order.lines {
            let quantity = merged.entry(line.product.as_str()).or_default();
            *quantity = quantity.saturating_add(line.quantity);
        }
    }
    merged
        .into_iter()
        .filter(|(_, quantity)| *quantity > 0)
        .map(|(product, quantity)| v1::ProductQuantity {
            product: product.to_owned(),
            quantity,
        })
        .collect()
}

/// Why `items` would not be done within [`WINDOW_DAYS`] from today on the
/// capacity as it stands, booked load included; `None` when they would.
async fn misfit_of(clients: &Clients, items: &[v1::ProductQuantity]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let checked = clients
        .production
        .clone()
        .check_capacity(v1::CheckCapacityRequest {
            items: items.to_vec(),
            earliest_start: String::new(),
        })
        .await;
    let check = match checked {
        Ok(check) => check.into_inner(),
        Err(status) => return Some(format!("CheckCapacity: {}", status.message())),
    };
    let today = chrono::Utc::now().date_naive();
    let window_end = today + chrono::Days::new(WINDOW_DAYS);
    match gendan_proto::date_from_str(&check.earliest_completion) {
        Some(done) if done <= window_end => None,
        Some(done) => Some(format!(
            "the heaviest orders in flight would be done on {done}, after {window_end}"
        )),
        None => Some(format!(
            "CheckCapacity answered {:?} as the earliest completion",
            check.earliest_completion
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(lines: &[(&str, u32)]) -> CreateOrderRequest {
        CreateOrderRequest {
            lines: lines
                .iter()
                .map(|(product, quantity)| v1::OrderLine {
                    product: (*product).to_owned(),
                    quantity: *quantity,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn stage(work_centre: &str, hours_per_unit: f64, setup_hours: f64) -> RoutingStage {
        RoutingStage {
            stage: work_centre.to_lowercase(),
            work_centre: work_centre.to_owned(),
            hours_per_unit,
            setup_hours,
        }
    }

    #[test]
    fn hours_follow_production_rule_and_the_peak_takes_the_heaviest() {
        let routings = HashMap::from([
            (
                "shirt".to_owned(),
                vec![stage("CUT", 0.02, 2.0), stage("SEW", 0.25, 4.0)],
            ),
            ("tote".to_owned(), vec![stage("SEW", 0.1, 2.0)]),
        ]);
        let orders = [
            order(&[("shirt", 100), ("tote", 200)]),
            order(&[("shirt", 1000)]),
            order(&[("tote", 100)]),
        ];
        let per_order: Vec<_> = orders.iter().map(|o| order_hours(o, &routings)).collect();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(per_order[0]["CUT"], 4.0));
        assert!(close(per_order[0]["SEW"], 29.0 + 22.0));
        assert!(close(per_order[1]["SEW"], 254.0));
        assert!(!per_order[2].contains_key("CUT"));
        assert!(close(peak(&per_order, "SEW", 2), 254.0 + 51.0));
        assert!(close(peak(&per_order, "SEW", 10), 254.0 + 51.0 + 12.0));
        assert!(close(peak(&per_order, "PACK", 2), 0.0));

        let items = heaviest_items(&orders, &per_order, 2);
        let merged: Vec<(&str, u32)> = items
            .iter()
            .map(|item| (item.product.as_str(), item.quantity))
            .collect();
        assert_eq!(merged, vec![("shirt", 1100), ("tote", 200)]);
    }
}
