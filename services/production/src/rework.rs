//! Rework of goods that failed final inspection, as a pure function: a
//! product's rework is one stage named [`STAGE`] on the work centre of its
//! routing's last stage, at that stage's hours per unit plus its set-up.
//! The goods are finished, so they go back to where they were finished; the
//! earlier stages are not repeated.
//!
//! [`planning::schedule_rework`](crate::planning::schedule_rework) turns the
//! requested products into rework [`Item`]s with [`item`] and runs the same
//! finite-capacity scheduler as for any work order, so a rework books (and
//! waits for) capacity like any other work.

use crate::schedule::{Item, StageSpec};

/// The stage name of every rework, as the MES reports it.
pub const STAGE: &str = "rework";

/// `routed` (a product, a quantity and its routing) as a rework: its last
/// routing stage once more, named [`STAGE`]. `None` for a routing without
/// stages, which the catalogue never stores.
pub fn item(routed: Item) -> Option<Item> {
    let last = routed.stages.last()?;
    let rework = StageSpec {
        stage: STAGE.to_owned(),
        work_centre: last.work_centre.clone(),
        hours_per_unit: last.hours_per_unit,
        setup_hours: last.setup_hours,
    };
    Some(Item {
        product: routed.product,
        quantity: routed.quantity,
        stages: vec![rework],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::NaiveDate;

    use super::*;
    use crate::schedule::{Calendar, Load, schedule};

    fn spec(stage: &str, work_centre: &str, hours_per_unit: f64, setup_hours: f64) -> StageSpec {
        StageSpec {
            stage: stage.to_owned(),
            work_centre: work_centre.to_owned(),
            hours_per_unit,
            setup_hours,
        }
    }

    fn shirts(quantity: u32) -> Item {
        Item {
            product: "shirt".to_owned(),
            quantity,
            stages: vec![
                spec("cutting", "CUT", 0.5, 2.0),
                spec("sewing", "SEW", 1.0, 0.5),
            ],
        }
    }

    #[test]
    fn rework_is_the_last_stage_once_more_with_its_setup() {
        let rework = item(shirts(10)).unwrap();
        assert_eq!(rework.product, "shirt");
        assert_eq!(rework.quantity, 10);
        assert_eq!(rework.stages, vec![spec(STAGE, "SEW", 1.0, 0.5)]);
        // 10 units x 1 h + 0.5 h set-up.
        assert_eq!(rework.stages[0].hours_for(rework.quantity), 10.5);

        let no_routing = Item {
            stages: Vec::new(),
            ..shirts(1)
        };
        assert!(item(no_routing).is_none());
    }

    #[test]
    fn rework_books_capacity_after_what_is_already_booked() {
        let monday = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let calendars = HashMap::from([(
            "SEW".to_owned(),
            Calendar {
                hours_per_day: 8.0,
                ..Calendar::default()
            },
        )]);
        let mut load = Load::default();
        load.book("SEW", monday, 6.0);
        let plan = schedule(&[item(shirts(4)).unwrap()], &calendars, &mut load, monday).unwrap();
        let stage = &plan.stages[0];
        assert_eq!((stage.stage.as_str(), stage.hours), (STAGE, 4.5));
        // Two hours left on Monday, the other 2.5 on Tuesday.
        assert_eq!(
            stage.bookings,
            vec![
                (monday, 2.0),
                (NaiveDate::from_ymd_opt(2026, 3, 3).unwrap(), 2.5)
            ]
        );
    }
}
