//! What dunning does next for one unpaid invoice (pure).
//!
//! A [`Schedule`] lists the days after the due date on which an unpaid
//! invoice is reminded (default 1, 7, 14). [`next`] looks at one invoice —
//! its due date, the last reminder it got and whether it was escalated —
//! and today, and answers [`Next::Remind`] with the reminder's number,
//! [`Next::Escalate`] or [`Next::Nothing`]:
//!
//! | today, in days after the due date | invoice state | next |
//! | --- | --- | --- |
//! | 0 or before | any | nothing |
//! | reached the day of reminder `k` | last reminder `< k` | remind `k` (the latest day reached; days missed while the worker was down are not reminded late, one after the other) |
//! | after the last schedule day | every reminder sent, the last one before today | escalate |
//! | any | escalated | nothing (a person decides; `ExtendPaymentDue` starts dunning over) |
//!
//! So an invoice never gets more reminders than the schedule has days, is
//! escalated once and only after its last reminder (a day later at the
//! earliest), and nothing happens before it is due.
//! [`crate::dunning_worker`] applies the answer and stores the new state.

use chrono::NaiveDate;
use gendan_grpc::FieldError;

/// Most reminders a schedule may have.
pub const MAX_REMINDERS: usize = 10;
/// Latest reminder day: a year overdue is a case for a person long before.
pub const MAX_DAY: u32 = 365;
/// The schedule used until someone sets one.
pub const DEFAULT_DAYS: [u32; 3] = [1, 7, 14];

const FIELD: &str = "reminder_days";

/// Reminder days after the due date: 1 to 10 days, strictly increasing,
/// each in 1..=365. Only [`Schedule::new`] makes one, so every schedule is
/// valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    days: Vec<u32>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            days: DEFAULT_DAYS.to_vec(),
        }
    }
}

impl Schedule {
    /// The days as PostgreSQL keeps them (`INTEGER[]`).
    pub fn stored(&self) -> Vec<i32> {
        self.days
            .iter()
            .map(|day| i32::try_from(*day).unwrap_or(i32::MAX))
            .collect()
    }

    /// Checks `days`; the error names `reminder_days` (and the position of
    /// the offending day).
    pub fn new(days: &[u32]) -> Result<Self, FieldError> {
        if days.is_empty() || days.len() > MAX_REMINDERS {
            return Err(FieldError::new(
                FIELD,
                format!("must list 1 to {MAX_REMINDERS} days, got {}", days.len()),
            ));
        }
        for (i, day) in days.iter().enumerate() {
            if !(1..=MAX_DAY).contains(day) {
                return Err(FieldError::new(
                    format!("{FIELD}[{i}]"),
                    format!("{day} is not a day from 1 to {MAX_DAY} after the due date"),
                ));
            }
            if let Some(previous) = i.checked_sub(1).map(|p| days[p])
                && *day <= previous
            {
                return Err(FieldError::new(
                    format!("{FIELD}[{i}]"),
                    format!(
                        "{day} does not come after {previous}: days must be strictly increasing"
                    ),
                ));
            }
        }
        Ok(Schedule {
            days: days.to_vec(),
        })
    }

    pub fn days(&self) -> &[u32] {
        &self.days
    }

    /// The last reminder day; escalation comes after it.
    pub fn last_day(&self) -> u32 {
        // Never empty (see `new`); 0 keeps the arithmetic total anyway.
        self.days.last().copied().unwrap_or(0)
    }
}

/// Where an invoice's dunning stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    /// The number of the last reminder sent (0 = none). Numbers can skip
    /// (see [`next`]), so this is not a count of messages.
    pub reminded: u32,
    /// When that reminder was sent.
    pub last_reminded_on: Option<NaiveDate>,
    pub escalated: bool,
}

/// What to do for an invoice now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send reminder number `n` (1 for the first).
    Remind(u32),
    /// Every reminder went unanswered: a person decides.
    Escalate,
    Nothing,
}

/// Days from `due_date` to `today` (negative before it).
pub fn days_overdue(due_date: NaiveDate, today: NaiveDate) -> i64 {
    (today - due_date).num_days()
}

/// The next dunning step for an invoice due on `due_date` that is still
/// unpaid on `today` (see the module table).
pub fn next(schedule: &Schedule, due_date: NaiveDate, state: &State, today: NaiveDate) -> Next {
    if state.escalated {
        return Next::Nothing;
    }
    let overdue = days_overdue(due_date, today);
    if overdue <= 0 {
        return Next::Nothing;
    }
    let days = schedule.days();
    let sent = usize::try_from(state.reminded).unwrap_or(usize::MAX);
    if sent < days.len() {
        // Days are increasing, so the reminders whose day has come are a
        // prefix; the latest of them is the one worth sending.
        let reached = days
            .iter()
            .take_while(|day| i64::from(**day) <= overdue)
            .count();
        if reached > sent {
            return Next::Remind(u32::try_from(reached).unwrap_or(u32::MAX));
        }
        return Next::Nothing;
    }
    // A reminder sent today (late, after an outage) gets its day before the
    // escalation, so the customer always has a day to answer the last one.
    let reminded_today = state.last_reminded_on.is_some_and(|on| on >= today);
    if overdue > i64::from(schedule.last_day()) && !reminded_today {
        return Next::Escalate;
    }
    Next::Nothing
}

#[cfg(test)]
mod tests {
    use chrono::Days;
    use proptest::prelude::*;

    use super::*;

    fn due() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
    }

    fn day(offset: i64) -> NaiveDate {
        due() + chrono::Duration::days(offset)
    }

    /// Runs the worker once on each day of `offsets`, applying what it says.
    fn run(schedule: &Schedule, offsets: &[i64]) -> Vec<(i64, Next)> {
        let mut state = State::default();
        let mut done = Vec::new();
        for offset in offsets {
            let today = day(*offset);
            let next = next(schedule, due(), &state, today);
            match next {
                Next::Remind(n) => {
                    state.reminded = n;
                    state.last_reminded_on = Some(today);
                }
                Next::Escalate => state.escalated = true,
                Next::Nothing => continue,
            }
            done.push((*offset, next));
        }
        done
    }

    #[test]
    fn daily_passes_follow_the_default_schedule_then_escalate_once() {
        let offsets: Vec<i64> = (-3..40).collect();
        assert_eq!(
            run(&Schedule::default(), &offsets),
            vec![
                (1, Next::Remind(1)),
                (7, Next::Remind(2)),
                (14, Next::Remind(3)),
                (15, Next::Escalate),
            ]
        );
    }

    #[test]
    fn a_late_pass_sends_only_the_latest_reminder_and_waits_a_day_to_escalate() {
        assert_eq!(
            run(&Schedule::default(), &[10, 10, 30, 30, 31]),
            vec![
                (10, Next::Remind(2)),
                (30, Next::Remind(3)),
                (31, Next::Escalate)
            ]
        );
    }

    #[test]
    fn a_shorter_schedule_escalates_what_already_had_more_reminders() {
        let short = Schedule::new(&[3]).unwrap();
        let state = State {
            reminded: 2,
            last_reminded_on: Some(day(7)),
            escalated: false,
        };
        assert_eq!(next(&short, due(), &state, day(7)), Next::Nothing);
        assert_eq!(next(&short, due(), &state, day(8)), Next::Escalate);
    }

    #[test]
    fn schedules_are_checked_naming_reminder_days() {
        assert_eq!(Schedule::new(&[1, 7, 14]).unwrap(), Schedule::default());
        let cases: [(&[u32], &str); 6] = [
            (&[], "reminder_days"),
            (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "reminder_days"),
            (&[0], "reminder_days[0]"),
            (&[1, 366], "reminder_days[1]"),
            (&[7, 1], "reminder_days[1]"),
            (&[1, 7, 7], "reminder_days[2]"),
        ];
        for (days, field) in cases {
            assert_eq!(Schedule::new(days).unwrap_err().field, field, "{days:?}");
        }
        assert!(Schedule::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 365]).is_ok());
    }

    fn schedules() -> impl Strategy<Value = Schedule> {
        prop::collection::btree_set(1..=MAX_DAY, 1..=MAX_REMINDERS).prop_map(|days| {
            let days: Vec<u32> = days.into_iter().collect();
            Schedule::new(&days).unwrap()
        })
    }

    proptest! {
        #[test]
        fn reminders_are_bounded_ordered_and_escalation_comes_last(
            schedule in schedules(),
            // Gaps between passes: 0 is a second pass the same day, large
            // gaps are a worker that was down.
            gaps in prop::collection::vec(0i64..40, 1..120),
        ) {
            let offsets: Vec<i64> = gaps
                .iter()
                .scan(-20i64, |offset, gap| {
                    *offset += gap;
                    Some(*offset)
                })
                .collect();
            let done = run(&schedule, &offsets);
            let reminders: Vec<(i64, u32)> = done
                .iter()
                .filter_map(|(offset, next)| match next {
                    Next::Remind(n) => Some((*offset, *n)),
                    _ => None,
                })
                .collect();
            let escalations: Vec<i64> = done
                .iter()
                .filter(|(_, next)| *next == Next::Escalate)
                .map(|(offset, _)| *offset)
                .collect();

            prop_assert!(reminders.len() <= schedule.days().len());
            prop_assert!(escalations.len() <= 1);
            for (offset, _) in &done {
                prop_assert!(*offset > 0, "something happened before the due date");
            }
            for pair in reminders.windows(2) {
                prop_assert!(pair[0].1 < pair[1].1, "reminder numbers go up");
            }
            for (offset, n) in &reminders {
                let index = usize::try_from(*n).unwrap() - 1;
                prop_assert!(index < schedule.days().len());
                prop_assert!(*offset >= i64::from(schedule.days()[index]));
            }
            if let Some(escalated_on) = escalations.first() {
                let last = reminders.last().copied();
                let last_number = u32::try_from(schedule.days().len()).unwrap();
                prop_assert_eq!(last.map(|(_, n)| n), Some(last_number));
                prop_assert!(last.is_some_and(|(on, _)| on < *escalated_on));
                prop_assert!(*escalated_on > i64::from(schedule.last_day()));
                prop_assert_eq!(done.last().map(|(_, next)| *next), Some(Next::Escalate));
            }
        }

        #[test]
        fn nothing_is_due_on_or_before_the_due_date(
            schedule in schedules(),
            reminded in 0u32..12,
            before in 0u64..400,
        ) {
            let today = due().checked_sub_days(Days::new(before)).unwrap();
            let state = State { reminded, last_reminded_on: None, escalated: false };
            prop_assert_eq!(next(&schedule, due(), &state, today), Next::Nothing);
        }
    }
}
