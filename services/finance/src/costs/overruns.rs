//! Cost overruns: the order's valued costs against its budget, announced
//! once per crossing.
//!
//! [`standings`] (pure) says what is watched: the whole order against its
//! budget, and, when the budget is split into lines, each category against
//! its plan. A category without a plan line (or a plan of 0) that has a
//! cost is over at once: rework, expedite and credit notes are costs the
//! plan did not expect. A budget given as a total only is watched as a
//! total (every category would be "unplanned" otherwise). [`overruns`]
//! compares each with the stored flag (`receivables.over_budget` for the
//! whole order, `cost_category_flags` per category) and emits `CostOverrun`
//! when one goes over; falling back under it (a budget raised by an
//! amendment) re-arms the flag, so each crossing is announced once.

use gendan_messaging::{Cause, Outgoing};
use gendan_proto::money;
use gendan_proto::v1::CostOverrun;
use sqlx::PgConnection;

use super::Booked;
use crate::SERVICE;
use crate::receivables::{self, Receivable, STATUS_CANCELLED};
use crate::validate::COST_CATEGORIES;

/// One budget and what was spent against it: the whole order's
/// (`category` "") or one category's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub category: String,
    pub budget_minor: i64,
    pub actual_minor: i64,
}

impl Standing {
    pub fn over(&self) -> bool {
        self.actual_minor > self.budget_minor
    }
}

/// `categories` once each, in [`COST_CATEGORIES`] order, any other after
/// by name: how the ledger and the overruns list them.
pub fn in_listing_order(mut categories: Vec<&str>) -> Vec<&str> {
    let rank = |category: &str| {
        COST_CATEGORIES
            .iter()
            .position(|known| *known == category)
            .unwrap_or(COST_CATEGORIES.len())
    };
    categories.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    categories.dedup();
    categories
}

/// What is watched, the whole order first, then the categories in
/// [`COST_CATEGORIES`] order (any other after, by name). Nothing when the
/// budget is 0 (none was set). `plan` and `actual` are per category, the
/// actual in the order currency.
pub fn standings(
    budget_minor: i64,
    plan: &[(String, i64)],
    actual: &[(String, i64)],
) -> Vec<Standing> {
    if budget_minor <= 0 {
        return Vec::new();
    }
    // An overflowing sum is over any budget: saturating keeps it so.
    let total = actual
        .iter()
        .fold(0i64, |sum, (_, amount)| sum.saturating_add(*amount));
    let mut watched = vec![Standing {
        category: String::new(),
        budget_minor,
        actual_minor: total,
    }];
    if plan.is_empty() {
        return watched;
    }
    let categories = in_listing_order(
        plan.iter()
            .chain(actual)
            .map(|(category, _)| category.as_str())
            .collect(),
    );
    let amount_of = |lines: &[(String, i64)], category: &str| {
        lines
            .iter()
            .filter(|(c, _)| c == category)
            .fold(0i64, |sum, (_, amount)| sum.saturating_add(*amount))
    };
    watched.extend(categories.into_iter().map(|category| Standing {
        category: category.to_owned(),
        budget_minor: amount_of(plan, category),
        actual_minor: amount_of(actual, category),
    }));
    watched
}

/// What crossed the line: the costs just booked or valued (of the category,
/// for a category), or the budget itself when nothing was (a receivable
/// opened or amended over costs already booked).
fn crossed_by(category: &str, booked: &[Booked]) -> String {
    let named: Vec<&str> = booked
        .iter()
        .filter(|b| category.is_empty() || b.category == category)
        .map(|b| b.what.as_str())
        .collect();
    if named.is_empty() {
        "costs booked before the budget was set or changed".to_owned()
    } else {
        named.join("; ")
    }
}

/// Records whether the whole order (`category` "") or a category is over
/// its budget now.
async fn remember(
    conn: &mut PgConnection,
    order_id: &str,
    category: &str,
    over: bool,
) -> sqlx::Result<()> {
    if category.is_empty() {
        sqlx::query("UPDATE receivables SET over_budget = $2 WHERE order_id = $1")
            .bind(order_id)
            .bind(over)
            .execute(conn)
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO cost_category_flags (order_id, category, over) VALUES ($1, $2, $3) \
             ON CONFLICT (order_id, category) DO UPDATE SET over = EXCLUDED.over",
        )
        .bind(order_id)
        .bind(category)
        .bind(over)
        .execute(conn)
        .await?;
    }
    Ok(())
}

fn overrun(receivable: &Receivable, standing: &Standing, cause: String) -> CostOverrun {
    CostOverrun {
        order_id: receivable.order_id.clone(),
        budget_minor: standing.budget_minor,
        actual_minor: standing.actual_minor,
        category: standing.category.clone(),
        currency: receivable.currency.clone(),
        cause,
    }
}

/// Compares the order's valued costs with its budget (see the module doc)
/// after `booked` were booked or valued, records where it stands and
/// returns one `CostOverrun` per budget just gone over. The caller holds
/// the order lock.
pub async fn overruns(
    conn: &mut PgConnection,
    order_id: &str,
    cause: &Cause,
    booked: &[Booked],
) -> sqlx::Result<Vec<Outgoing>> {
    let Some(receivable) = receivables::find(conn, order_id).await? else {
        return Ok(Vec::new());
    };
    if receivable.cost_budget_minor == 0 || receivable.status == STATUS_CANCELLED {
        return Ok(Vec::new());
    }
    let actual: Vec<(String, i64)> = sqlx::query_as(
        "SELECT category, sum(order_amount_minor)::bigint FROM cost_entries \
         WHERE order_id = $1 AND order_currency = $2 GROUP BY category",
    )
    .bind(order_id)
    .bind(&receivable.currency)
    .fetch_all(&mut *conn)
    .await?;
    let plan = crate::ledger::plan_lines(conn, order_id).await?;
    let flags: Vec<(String, bool)> =
        sqlx::query_as("SELECT category, over FROM cost_category_flags WHERE order_id = $1")
            .bind(order_id)
            .fetch_all(&mut *conn)
            .await?;
    let was_over = |category: &str| {
        if category.is_empty() {
            receivable.over_budget
        } else {
            flags.iter().any(|(c, over)| c == category && *over)
        }
    };

    let watched = standings(receivable.cost_budget_minor, &plan, &actual);
    let mut events = Vec::new();
    for standing in &watched {
        let over = standing.over();
        if over == was_over(&standing.category) {
            continue;
        }
        remember(conn, order_id, &standing.category, over).await?;
        if !over {
            continue;
        }
        let crossed = crossed_by(&standing.category, booked);
        tracing::warn!(
            order_id,
            category = %standing.category,
            budget = %money(standing.budget_minor, &receivable.currency),
            actual = %money(standing.actual_minor, &receivable.currency),
            cause = %crossed,
            "cost overrun"
        );
        let event = overrun(&receivable, standing, crossed);
        events.push(Outgoing::event(SERVICE, order_id, &event, cause));
    }
    // A category no longer watched (an amendment dropped the budget lines)
    // is re-armed, so a plan given again announces its next crossing.
    for (category, over) in &flags {
        if *over && !watched.iter().any(|s| s.category == *category) {
            remember(conn, order_id, category, false).await?;
        }
    }
    Ok(events)
}

/// [`overruns`] when no cost was just booked: the budget was set or
/// changed (`OpenReceivable`, an amendment) over costs already on the
/// ledger.
pub async fn check_overrun(
    conn: &mut PgConnection,
    order_id: &str,
    cause: &Cause,
) -> sqlx::Result<Vec<Outgoing>> {
    overruns(conn, order_id, cause, &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(lines: &[(&str, i64)]) -> Vec<(String, i64)> {
        lines
            .iter()
            .map(|(category, amount)| ((*category).to_owned(), *amount))
            .collect()
    }

    fn over(watched: &[Standing]) -> Vec<&str> {
        watched
            .iter()
            .filter(|s| s.over())
            .map(|s| s.category.as_str())
            .collect()
    }

    #[test]
    fn no_budget_watches_nothing() {
        assert!(standings(0, &[], &lines(&[("material", 5)])).is_empty());
    }

    #[test]
    fn a_total_budget_is_watched_as_a_total() {
        let watched = standings(1_000, &[], &lines(&[("material", 700), ("rework", 400)]));
        assert_eq!(watched.len(), 1);
        assert_eq!(
            watched[0],
            Standing {
                category: String::new(),
                budget_minor: 1_000,
                actual_minor: 1_100
            }
        );
        assert_eq!(over(&watched), [""]);
    }

    #[test]
    fn categories_are_watched_against_their_plan_and_unplanned_ones_are_over() {
        let plan = lines(&[("material", 600), ("labour", 400), ("freight", 0)]);
        let actual = lines(&[("labour", 450), ("material", 500), ("credit_note", 30)]);
        let watched = standings(1_000, &plan, &actual);
        let categories: Vec<&str> = watched.iter().map(|s| s.category.as_str()).collect();
        assert_eq!(
            categories,
            ["", "material", "labour", "freight", "credit_note"]
        );
        // 980 in all is under the 1,000 budget; labour is over its plan and
        // the credit note had none.
        assert_eq!(over(&watched), ["labour", "credit_note"]);
        assert!(!watched[3].over(), "a plan of 0 with no cost is not over");
    }

    #[test]
    fn unknown_categories_come_last() {
        let watched = standings(
            100,
            &lines(&[("material", 100)]),
            &lines(&[("lunch", 5), ("material", 1)]),
        );
        let categories: Vec<&str> = watched.iter().map(|s| s.category.as_str()).collect();
        assert_eq!(categories, ["", "material", "lunch"]);
    }

    #[test]
    fn the_cause_names_the_costs_of_the_category() {
        let booked = [
            Booked::new("rework", "rework SEW: 12.5 h on WO-9", 25_000, "USD"),
            Booked::new("material", "purchase order PO-7", 120_000, "CNY"),
        ];
        assert_eq!(
            crossed_by("rework", &booked),
            "rework SEW: 12.5 h on WO-9 (250.00 USD)"
        );
        assert_eq!(
            crossed_by("", &booked),
            "rework SEW: 12.5 h on WO-9 (250.00 USD); purchase order PO-7 (1200.00 CNY)"
        );
        assert!(crossed_by("labour", &booked).contains("budget"));
        assert!(crossed_by("", &[]).contains("budget"));
    }
}
