//! `gendan orders calendar`: the order's time-and-action calendar
//! (GetMilestones) as the merchandiser follows it — each milestone with its
//! planned, projected and actual date, how many days it is off its plan,
//! where it stands today and what last moved it; then the projected
//! delivery against the promised one and what the calendar cannot date yet.

use gendan_proto::v1::{self, GetMilestonesResponse, MilestoneKind, MilestoneStatus};
use serde_json::{Value, json};

use crate::claims_cli::OrdersClient;
use crate::cli::{Output, dash, print_json, print_table, status_error, write_line};
use crate::retry::rpc;

/// `gendan orders calendar <order id>`.
pub async fn calendar(
    orders: &mut OrdersClient,
    order_id: String,
    output: Output,
) -> anyhow::Result<()> {
    let calendar = rpc!(
        orders,
        get_milestones,
        v1::GetMilestonesRequest { order_id }
    )
    .map_err(status_error)?;
    match output {
        Output::Json => print_json(&calendar_json(&calendar)),
        Output::Table => print_calendar(&calendar),
    }
    Ok(())
}

fn print_calendar(calendar: &GetMilestonesResponse) {
    if calendar.milestones.is_empty() {
        write_line(format_args!(
            "order {}: no calendar yet (the workflow has not planned it)",
            calendar.order_id
        ));
    } else {
        write_line(format_args!(
            "order {}  calendar version {}",
            calendar.order_id, calendar.version
        ));
        write_line(format_args!(""));
        print_table(
            &[
                "milestone",
                "planned",
                "projected",
                "actual",
                "variance",
                "status",
                "moved by",
            ],
            calendar.milestones.iter().map(row).collect(),
        );
    }
    write_line(format_args!(""));
    write_line(format_args!(
        "delivery: projected {}, promised {}",
        dash(&calendar.projected_delivery_date),
        dash(&calendar.promised_delivery_date)
    ));
    for note in &calendar.incomplete {
        write_line(format_args!("not dated yet: {note}"));
    }
}

fn row(milestone: &v1::Milestone) -> Vec<String> {
    vec![
        milestone.label.clone(),
        dash(&milestone.planned),
        dash(&milestone.projected),
        dash(&milestone.actual),
        variance_text(milestone),
        status_name(milestone.status()),
        milestone.moved_by.clone(),
    ]
}

/// "+3 d", "−1 d", "0 d"; blank when there is nothing to compare (no plan,
/// or neither an actual nor a projected date).
fn variance_text(milestone: &v1::Milestone) -> String {
    let nothing_to_compare = milestone.planned.is_empty()
        || (milestone.actual.is_empty() && milestone.projected.is_empty());
    if nothing_to_compare {
        return String::new();
    }
    match milestone.variance_days {
        0 => "0 d".to_owned(),
        days if days > 0 => format!("+{days} d"),
        days => format!("\u{2212}{} d", days.unsigned_abs()),
    }
}

/// `MILESTONE_STATUS_DONE_LATE` → `done_late`.
fn status_name(status: MilestoneStatus) -> String {
    status
        .as_str_name()
        .trim_start_matches("MILESTONE_STATUS_")
        .to_lowercase()
}

/// `MILESTONE_KIND_STAGE_DONE` → `stage_done`, as the milestone keys spell it.
fn kind_name(kind: MilestoneKind) -> String {
    kind.as_str_name()
        .trim_start_matches("MILESTONE_KIND_")
        .to_lowercase()
}

fn calendar_json(calendar: &GetMilestonesResponse) -> Value {
    json!({
        "order_id": calendar.order_id,
        "version": calendar.version,
        "promised_delivery_date": calendar.promised_delivery_date,
        "projected_delivery_date": calendar.projected_delivery_date,
        "incomplete": calendar.incomplete,
        "milestones": calendar.milestones.iter().map(|m| json!({
            "key": m.key,
            "kind": kind_name(m.kind()),
            "subject": m.subject,
            "label": m.label,
            "planned": m.planned,
            "projected": m.projected,
            "actual": m.actual,
            "variance_days": m.variance_days,
            "status": status_name(m.status()),
            "depends_on": m.depends_on,
            "moved_by": m.moved_by,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milestone(
        planned: &str,
        projected: &str,
        actual: &str,
        variance_days: i32,
    ) -> v1::Milestone {
        v1::Milestone {
            planned: planned.to_owned(),
            projected: projected.to_owned(),
            actual: actual.to_owned(),
            variance_days,
            ..Default::default()
        }
    }

    #[test]
    fn variance_is_signed_in_days_and_blank_without_a_plan() {
        let late = milestone("2027-03-10", "", "2027-03-13", 3);
        assert_eq!(variance_text(&late), "+3 d");
        let early = milestone("2027-03-10", "2027-03-09", "", -1);
        assert_eq!(variance_text(&early), "\u{2212}1 d");
        let on_the_day = milestone("2027-03-10", "2027-03-10", "", 0);
        assert_eq!(variance_text(&on_the_day), "0 d");
        let unplanned = milestone("", "2027-03-10", "", 0);
        assert_eq!(variance_text(&unplanned), "");
    }

    #[test]
    fn names_are_the_short_snake_case_ones() {
        assert_eq!(status_name(MilestoneStatus::DoneLate), "done_late");
        assert_eq!(status_name(MilestoneStatus::OnPlan), "on_plan");
        assert_eq!(kind_name(MilestoneKind::StageDone), "stage_done");
    }
}
