//! The demo's live view of its orders: on a terminal an indicatif bar of
//! closed orders with the open ones counted per phase beside it, redrawn in
//! place; elsewhere (a CI log, a pipe) one plain line per change, so the
//! log reads as a history instead of a smear of control characters.

use std::collections::BTreeMap;
use std::time::Instant;

use gendan_proto::v1::{self, Phase};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The view; [`Progress::show`] it a fresh snapshot of the orders.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    last_line: String,
}

impl Progress {
    pub fn new(orders: usize) -> Self {
        let bar = ProgressBar::with_draw_target(Some(orders as u64), ProgressDrawTarget::stdout());
        if let Ok(style) =
            ProgressStyle::with_template("[{elapsed:>4}] {bar:24} {pos}/{len} closed | {msg}")
        {
            bar.set_style(style);
        }
        Progress {
            bar,
            started: Instant::now(),
            last_line: String::new(),
        }
    }

    /// Shows where the orders are.
    pub fn show(&mut self, orders: &[v1::Order]) {
        let closed = orders
            .iter()
            .filter(|o| o.workflow_status == "completed")
            .count();
        let open = open_by_phase(orders);
        if !self.bar.is_hidden() {
            self.bar.set_position(closed as u64);
            self.bar.set_message(open);
            return;
        }
        let line = format!("{closed}/{} closed | {open}", orders.len());
        if line != self.last_line {
            self.say(&line);
            self.last_line = line;
        }
    }

    /// A line of its own above the bar (or in the log), with the time.
    pub fn say(&self, text: &str) {
        let line = format!("[{:>6.1}s] {text}", self.started.elapsed().as_secs_f64());
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Leaves the bar as it ended.
    pub fn finish(&self) {
        self.bar.abandon();
    }
}

/// "materials 3 | production 5 | at risk 1": the open orders per phase, in
/// workflow order, and how many are at risk.
pub fn open_by_phase(orders: &[v1::Order]) -> String {
    let mut counts: BTreeMap<i32, (&str, usize)> = BTreeMap::new();
    for order in orders.iter().filter(|o| o.workflow_status != "completed") {
        let name = Phase::try_from(order.phase)
            .unwrap_or(Phase::Unspecified)
            .short_name();
        counts.entry(order.phase).or_insert((name, 0)).1 += 1;
    }
    let mut parts: Vec<String> = counts
        .values()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let at_risk = orders.iter().filter(|o| o.at_risk).count();
    parts.push(format!("at risk {at_risk}"));
    parts.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(phase: Phase, status: &str, at_risk: bool) -> v1::Order {
        v1::Order {
            phase: phase as i32,
            workflow_status: status.to_owned(),
            at_risk,
            ..Default::default()
        }
    }

    #[test]
    fn open_orders_are_counted_per_phase_in_workflow_order() {
        let orders = [
            order(Phase::Production, "running", true),
            order(Phase::Materials, "running", false),
            order(Phase::Production, "running", false),
            order(Phase::Closed, "completed", false),
        ];
        assert_eq!(
            open_by_phase(&orders),
            "materials 1 | production 2 | at risk 1"
        );
    }
}
