//! ISO 2859-1 Table II-B: single sampling plans for tightened inspection
//! (master table), general level II, as data beside Table II-A.
//!
//! Read down a column, it is Table II-A moved one code letter down, with two
//! differences: the two cells under a 0/1 plan both point down (to 1/2),
//! where Table II-A points up and then down; and past 5/6 the acceptance
//! numbers grow more slowly (8/9, 12/13, 18/19 instead of 7/8, 10/11, 14/15,
//! 21/22). So a cell either keeps the normal sample with a lower acceptance
//! number or draws a larger sample. Being one row lower, the 0.025 column
//! runs past R: the table's extra row S (3150 units) holds its 1/2, and is
//! reached only by that column's arrow, so S's other cells (blank in the
//! standard) are written as arrows up.
//!
//! Row A's 10 % cell is an arrow down, as in the published copies we
//! checked: the 0/1 diagonal of this table starts at B (AQL 6.5).

use super::{Cell, D, U, p};

/// Table II-B, rows by code letter (A to S), columns as
/// [`super::AQL_COLUMNS`].
#[rustfmt::skip]
pub const TABLE_II_B: [[Cell; 14]; 17] = [
    //          0.025    0.040    0.065    0.10     0.15     0.25     0.40     0.65     1.0      1.5      2.5      4.0      6.5      10
    /* A    2 */ [D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D],
    /* B    3 */ [D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), D],
    /* C    5 */ [D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), D,       D],
    /* D    8 */ [D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), D,       D,       p(1, 2)],
    /* E   13 */ [D,       D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), D,       D,       p(1, 2), p(2, 3)],
    /* F   20 */ [D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), D,       D,       p(1, 2), p(2, 3), p(3, 4)],
    /* G   32 */ [D,       D,       D,       D,       D,       D,       D,       p(0, 1), D,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6)],
    /* H   50 */ [D,       D,       D,       D,       D,       D,       p(0, 1), D,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(8, 9)],
    /* J   80 */ [D,       D,       D,       D,       D,       p(0, 1), D,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(8, 9), p(12, 13)],
    /* K  125 */ [D,       D,       D,       D,       p(0, 1), D,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(8, 9), p(12, 13), p(18, 19)],
    /* L  200 */ [D,       D,       D,       p(0, 1), D,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(8, 9), p(12, 13), p(18, 19), U],
    /* M  315 */ [D,       D,       p(0, 1), D,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(8, 9), p(12, 13), p(18, 19), U,       U],
    /* N  500 */ [D,       p(0, 1), D,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(8, 9), p(12, 13), p(18, 19), U,       U,       U],
    /* P  800 */ [p(0, 1), D,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(8, 9), p(12, 13), p(18, 19), U,       U,       U,       U],
    /* Q 1250 */ [D,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(8, 9), p(12, 13), p(18, 19), U,       U,       U,       U,       U],
    /* R 2000 */ [D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(8, 9), p(12, 13), p(18, 19), U,       U,       U,       U,       U,       U],
    /* S 3150 */ [p(1, 2), U,       U,       U,       U,       U,       U,       U,       U,       U,       U,       U,       U,       U],
];

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sampling::{
        AQL_COLUMNS, Aql, CODE_LETTERS, SAMPLE_SIZES, Severity, TABLE_II_A, Tolerance, plan,
        plan_at, resolve_at,
    };

    /// The Ac/Re series of Table II-B from 1/2 on.
    const SERIES: [(u32, u32); 7] = [(1, 2), (2, 3), (3, 4), (5, 6), (8, 9), (12, 13), (18, 19)];

    /// (lot size, AQL, plan letter, n, Ac, Re) as read from ISO 2859-1
    /// Tables I and II-B, general level II, tightened inspection.
    const PUBLISHED: &[(u32, f64, char, u32, u32, u32)] = &[
        // J, n = 80
        (1_000, 1.0, 'J', 80, 1, 2),
        (1_000, 2.5, 'J', 80, 3, 4),
        (1_000, 4.0, 'J', 80, 5, 6),
        (1_000, 6.5, 'J', 80, 8, 9),
        (1_000, 10.0, 'J', 80, 12, 13),
        (1_000, 0.65, 'K', 125, 1, 2), // arrow down
        // K, L
        (3_200, 2.5, 'K', 125, 5, 6),
        (3_200, 0.65, 'K', 125, 1, 2),
        (3_200, 10.0, 'K', 125, 18, 19),
        (10_000, 0.65, 'L', 200, 2, 3),
        (10_000, 6.5, 'L', 200, 18, 19),
        (10_000, 10.0, 'K', 125, 18, 19), // arrow up
        // H, n = 50
        (500, 4.0, 'H', 50, 3, 4),
        (500, 2.5, 'H', 50, 2, 3),
        (500, 6.5, 'H', 50, 5, 6),
        (500, 10.0, 'H', 50, 8, 9),
        (500, 1.0, 'J', 80, 1, 2),   // arrow down
        (500, 0.65, 'K', 125, 1, 2), // arrow down twice
        // G, F, E, B
        (280, 0.65, 'G', 32, 0, 1),
        (280, 2.5, 'G', 32, 1, 2),
        (150, 1.0, 'F', 20, 0, 1),
        (150, 4.0, 'F', 20, 1, 2),
        (150, 1.5, 'H', 50, 1, 2), // arrow down twice
        (90, 6.5, 'E', 13, 1, 2),
        (15, 6.5, 'B', 3, 0, 1),
    ];

    fn tightened(lot: u32, percent: f64) -> (char, u32, u32, u32) {
        let tolerance = Tolerance::from_percent(percent).unwrap();
        let plan = plan_at(lot, tolerance, Severity::Tightened).unwrap();
        (
            plan.plan_code_letter,
            plan.sample_size,
            plan.accept,
            plan.reject,
        )
    }

    #[test]
    fn published_plans() {
        for &(lot, percent, letter, n, ac, re) in PUBLISHED {
            assert_eq!(
                tightened(lot, percent),
                (letter, n, ac, re),
                "lot {lot} AQL {percent}"
            );
        }
    }

    #[test]
    fn zero_tolerance_is_the_same_when_tightened() {
        assert_eq!(
            plan_at(1_000, Tolerance::Zero, Severity::Tightened),
            plan(1_000, Tolerance::Zero)
        );
    }

    /// The structure of the printed table, checked cell by cell: every
    /// column reads down as arrows, then 0/1 with two arrows down under it,
    /// then the Ac series from 1/2, then arrows up; and a plan repeats one
    /// row down and one column left.
    #[test]
    fn table_has_the_standards_shape() {
        assert_eq!(TABLE_II_B.len(), CODE_LETTERS.len());
        assert!(TABLE_II_B[0].iter().all(|cell| *cell != U));
        assert!(TABLE_II_B[16].iter().all(|cell| *cell != D));
        for col in 0..AQL_COLUMNS.len() {
            let column: Vec<Cell> = TABLE_II_B.iter().map(|row| row[col]).collect();
            let mut row = column.iter().take_while(|cell| **cell == D).count();
            if column[row] == p(0, 1) {
                assert_eq!(column[row + 1..row + 3], [D, D], "column {col} under 0/1");
                row += 3;
            } else {
                // Only the 10 % column starts below its 0/1 (module doc).
                assert_eq!(col, 13, "column {col} has no 0/1");
            }
            let plans: Vec<(u32, u32)> = column[row..]
                .iter()
                .map_while(|cell| match cell {
                    Cell::Plan(ac, re) => Some((*ac, *re)),
                    _ => None,
                })
                .collect();
            assert_eq!(plans.as_slice(), &SERIES[..plans.len()], "column {col}");
            let after = row + plans.len();
            // The series runs to its end unless the table (or R, the last
            // row Table I reaches) does first.
            assert!(
                plans.len() == SERIES.len() || after >= 16,
                "column {col} stops at row {after}"
            );
            assert!(
                column[after..].iter().all(|cell| *cell == U),
                "column {col}"
            );
        }
        for row in 1..16 {
            for col in 0..13 {
                if let Cell::Plan(..) = TABLE_II_B[row - 1][col + 1] {
                    assert_eq!(
                        TABLE_II_B[row][col],
                        TABLE_II_B[row - 1][col + 1],
                        "row {row} col {col} breaks the diagonal"
                    );
                }
            }
        }
    }

    /// Every cell Table I can reach: the tightened plan draws at least the
    /// normal sample and accepts at most the normal number.
    #[test]
    fn tightened_is_never_looser_than_normal() {
        let reachable = CODE_LETTERS.iter().enumerate().take(TABLE_II_A.len());
        for (row, letter) in reachable {
            for (col, (aql, _)) in AQL_COLUMNS.iter().enumerate() {
                let (normal_row, normal_ac, _) = resolve_at(Severity::Normal, row, Aql(col));
                let (tight_row, tight_ac, _) = resolve_at(Severity::Tightened, row, Aql(col));
                let (normal_n, tight_n) = (SAMPLE_SIZES[normal_row], SAMPLE_SIZES[tight_row]);
                assert!(
                    tight_n >= normal_n && tight_ac <= normal_ac,
                    "{letter} at {aql}: tightened n {tight_n} Ac {tight_ac}, normal n {normal_n} Ac {normal_ac}"
                );
            }
        }
    }

    proptest! {
        /// Any lot and column resolves to a tightened plan with Re = Ac + 1,
        /// a sample within the lot and no looser than the normal plan.
        #[test]
        fn every_lot_and_aql_has_a_tightened_plan(lot in 1u32..=u32::MAX, col in 0usize..14) {
            let tolerance = Tolerance::Aql(Aql(col));
            let normal = plan(lot, tolerance).unwrap();
            let tight = plan_at(lot, tolerance, Severity::Tightened).unwrap();
            prop_assert_eq!(tight.reject, tight.accept + 1);
            prop_assert!(tight.sample_size >= 1 && tight.sample_size <= lot);
            prop_assert_eq!(tight.code_letter, normal.code_letter);
            prop_assert!(tight.sample_size >= normal.sample_size);
            prop_assert!(tight.accept <= normal.accept);
        }
    }
}
