//! ISO 2859-1 single sampling plans at general inspection levels I, II (the
//! default) and III ([`Level`]), kept as data: [`TABLE_I`] is Table I (lot
//! size to code letter per level),
//! [`SAMPLE_SIZES`] the sample size of each code letter, [`TABLE_II_A`]
//! (normal inspection) and [`TABLE_II_B`] (tightened inspection, in
//! [`tightened`]) the acceptance and rejection numbers or an arrow per AQL
//! column. [`Severity`] says which of the two a plan is drawn from; the
//! switching rules that choose it are in [`crate::switching`].
//!
//! An arrow cell sends the reader to the first row above (`U`) or below
//! (`D`) that has numbers, and the sample size becomes that row's; [`plan`]
//! and [`plan_at`] follow the arrows exactly so. When the resulting sample
//! is not smaller than the lot, the whole lot is inspected (the standard's
//! footnote).
//!
//! Columns run from AQL 0.025 to 10 (percent nonconforming). The standard's
//! 0.010 and 0.015 columns are left out: their bottom cells (code letter R)
//! point below the table, and no factory plan here asks for them.

use std::fmt;

pub mod tightened;

pub use tightened::TABLE_II_B;

/// Code letters of the master tables, top to bottom. Table I never gives
/// S: it is the extra last row of Table II-B, reached only by an arrow of
/// tightened inspection.
pub const CODE_LETTERS: [char; 17] = [
    'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'L', 'M', 'N', 'P', 'Q', 'R', 'S',
];

/// Sample size of each code letter (same order as [`CODE_LETTERS`]); the
/// same in Tables II-A and II-B.
pub const SAMPLE_SIZES: [u32; 17] = [
    2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500, 800, 1250, 2000, 3150,
];

/// Table I: the largest lot size of each range and its code letter at
/// general inspection levels I, II and III. At level II lots of 2–8 are A
/// and 500 001 and more are Q; level I samples fewer units, level III more.
pub const TABLE_I: [(u32, [char; 3]); 15] = [
    (8, ['A', 'A', 'B']),
    (15, ['A', 'B', 'C']),
    (25, ['B', 'C', 'D']),
    (50, ['C', 'D', 'E']),
    (90, ['C', 'E', 'F']),
    (150, ['D', 'F', 'G']),
    (280, ['E', 'G', 'H']),
    (500, ['F', 'H', 'J']),
    (1_200, ['G', 'J', 'K']),
    (3_200, ['H', 'K', 'L']),
    (10_000, ['J', 'L', 'M']),
    (35_000, ['K', 'M', 'N']),
    (150_000, ['L', 'N', 'P']),
    (500_000, ['M', 'P', 'Q']),
    (u32::MAX, ['N', 'Q', 'R']),
];

/// ISO 2859-1 general inspection level: how much of a lot is sampled. II
/// is the standard's default; a customer may ask for I (less
/// discrimination, smaller samples) or III (more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    I,
    #[default]
    II,
    III,
}

impl Level {
    fn column(self) -> usize {
        match self {
            Level::I => 0,
            Level::II => 1,
            Level::III => 2,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Level::I => "I",
            Level::II => "II",
            Level::III => "III",
        }
    }
}

/// The AQL columns of the master tables: the text the standard prints and
/// the value in percent.
pub const AQL_COLUMNS: [(&str, f64); 14] = [
    ("0.025", 0.025),
    ("0.040", 0.040),
    ("0.065", 0.065),
    ("0.10", 0.10),
    ("0.15", 0.15),
    ("0.25", 0.25),
    ("0.40", 0.40),
    ("0.65", 0.65),
    ("1.0", 1.0),
    ("1.5", 1.5),
    ("2.5", 2.5),
    ("4.0", 4.0),
    ("6.5", 6.5),
    ("10", 10.0),
];

/// One cell of a master table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Acceptance number Ac, rejection number Re.
    Plan(u32, u32),
    /// Use the first plan above the arrow.
    Up,
    /// Use the first plan below the arrow.
    Down,
}

const U: Cell = Cell::Up;
const D: Cell = Cell::Down;
const fn p(accept: u32, reject: u32) -> Cell {
    Cell::Plan(accept, reject)
}

/// Table II-A, single sampling plans for normal inspection (master table),
/// rows by code letter (A to R), columns as [`AQL_COLUMNS`].
#[rustfmt::skip]
pub const TABLE_II_A: [[Cell; 14]; 16] = [
    //          0.025    0.040    0.065    0.10     0.15     0.25     0.40     0.65     1.0      1.5      2.5      4.0      6.5      10
    /* A    2 */ [D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), D],
    /* B    3 */ [D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), U,       D],
    /* C    5 */ [D,       D,       D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), U,       D,       p(1, 2)],
    /* D    8 */ [D,       D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), U,       D,       p(1, 2), p(2, 3)],
    /* E   13 */ [D,       D,       D,       D,       D,       D,       D,       D,       p(0, 1), U,       D,       p(1, 2), p(2, 3), p(3, 4)],
    /* F   20 */ [D,       D,       D,       D,       D,       D,       D,       p(0, 1), U,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6)],
    /* G   32 */ [D,       D,       D,       D,       D,       D,       p(0, 1), U,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8)],
    /* H   50 */ [D,       D,       D,       D,       D,       p(0, 1), U,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8), p(10, 11)],
    /* J   80 */ [D,       D,       D,       D,       p(0, 1), U,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8), p(10, 11), p(14, 15)],
    /* K  125 */ [D,       D,       D,       p(0, 1), U,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8), p(10, 11), p(14, 15), p(21, 22)],
    /* L  200 */ [D,       D,       p(0, 1), U,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8), p(10, 11), p(14, 15), p(21, 22), U],
    /* M  315 */ [D,       p(0, 1), U,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8), p(10, 11), p(14, 15), p(21, 22), U,       U],
    /* N  500 */ [p(0, 1), U,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8), p(10, 11), p(14, 15), p(21, 22), U,       U,       U],
    /* P  800 */ [U,       D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8), p(10, 11), p(14, 15), p(21, 22), U,       U,       U,       U],
    /* Q 1250 */ [D,       p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8), p(10, 11), p(14, 15), p(21, 22), U,       U,       U,       U,       U],
    /* R 2000 */ [p(1, 2), p(2, 3), p(3, 4), p(5, 6), p(7, 8), p(10, 11), p(14, 15), p(21, 22), U,       U,       U,       U,       U,       U],
];

/// One AQL column of the master tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aql(usize);

impl Aql {
    /// The column whose value is `percent` (0.65, 2.5, ...), if the table has it.
    pub fn from_percent(percent: f64) -> Option<Aql> {
        AQL_COLUMNS
            .iter()
            .position(|(_, value)| (value - percent).abs() <= value * 1e-9)
            .map(Aql)
    }

    /// The column printed as `code` ("2.5").
    pub fn from_code(code: &str) -> Option<Aql> {
        AQL_COLUMNS
            .iter()
            .position(|(text, _)| *text == code)
            .map(Aql)
    }

    pub fn percent(self) -> f64 {
        AQL_COLUMNS[self.0].1
    }

    pub fn code(self) -> &'static str {
        AQL_COLUMNS[self.0].0
    }
}

/// What a defect class tolerates: zero defects, or an AQL of the table.
///
/// ISO 2859-1 has no AQL 0; "critical 0" is the common trade practice of
/// rejecting a lot on any critical defect. It is applied as Ac 0 / Re 1 on
/// the code letter's own sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    Zero,
    Aql(Aql),
}

impl Tolerance {
    /// 0 is zero tolerance; anything else must be a column of the table.
    pub fn from_percent(percent: f64) -> Option<Tolerance> {
        if percent == 0.0 {
            return Some(Tolerance::Zero);
        }
        Aql::from_percent(percent).map(Tolerance::Aql)
    }

    /// Stored form: "0" or the column's code.
    pub fn from_code(code: &str) -> Option<Tolerance> {
        if code == "0" {
            return Some(Tolerance::Zero);
        }
        Aql::from_code(code).map(Tolerance::Aql)
    }

    pub fn code(self) -> &'static str {
        match self {
            Tolerance::Zero => "0",
            Tolerance::Aql(aql) => aql.code(),
        }
    }

    pub fn percent(self) -> f64 {
        match self {
            Tolerance::Zero => 0.0,
            Tolerance::Aql(aql) => aql.percent(),
        }
    }

    /// The supported values, for error messages.
    pub fn supported() -> String {
        let columns: Vec<&str> = AQL_COLUMNS.iter().map(|(code, _)| *code).collect();
        format!("0 (zero tolerance) or one of {}", columns.join(", "))
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Inspection severity (ISO 2859-1 clause 9): which master table a lot's
/// plans are drawn from. Reduced inspection is not used here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Table II-A.
    #[default]
    Normal,
    /// Table II-B: smaller acceptance numbers, or a larger sample, per cell.
    Tightened,
}

impl Severity {
    /// Stored form.
    pub fn code(self) -> &'static str {
        match self {
            Severity::Normal => "normal",
            Severity::Tightened => "tightened",
        }
    }

    pub fn from_code(code: &str) -> Option<Severity> {
        match code {
            "normal" => Some(Severity::Normal),
            "tightened" => Some(Severity::Tightened),
            _ => None,
        }
    }

    /// The stricter of two: a lot of several products is inspected once,
    /// at the severity of its most troubled product.
    pub fn stricter(self, other: Severity) -> Severity {
        self.max(other)
    }

    fn table(self) -> &'static [[Cell; 14]] {
        // Rows differ (II-B has S), so both are seen as slices of rows.
        const NORMAL: &[[Cell; 14]] = &TABLE_II_A;
        const TIGHTENED: &[[Cell; 14]] = &TABLE_II_B;
        match self {
            Severity::Normal => NORMAL,
            Severity::Tightened => TIGHTENED,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The plan one defect class of one lot is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingPlan {
    pub lot_size: u32,
    /// Table I code letter of the lot.
    pub code_letter: char,
    /// Master table row used, after following arrows.
    pub plan_code_letter: char,
    /// Units to inspect: the row's sample size, or the lot when it is smaller.
    pub sample_size: u32,
    pub accept: u32,
    pub reject: u32,
    pub full_inspection: bool,
}

impl SamplingPlan {
    /// Whether `defects` nonconforming units in the sample reject the lot.
    pub fn rejects(&self, defects: u32) -> bool {
        defects >= self.reject
    }
}

/// Table I: the code letter's row for a lot size at level II. A lot of one
/// unit is treated as the smallest range (it ends up inspected in full).
pub fn code_letter_row(lot_size: u32) -> usize {
    code_letter_row_at(Level::II, lot_size)
}

/// Table I: the code letter's row for a lot size at `level`.
pub fn code_letter_row_at(level: Level, lot_size: u32) -> usize {
    let letters = TABLE_I
        .iter()
        .find(|(largest, _)| lot_size <= *largest)
        .map_or(TABLE_I[TABLE_I.len() - 1].1, |(_, letters)| *letters);
    row_of(letters[level.column()])
}

fn row_of(letter: char) -> usize {
    CODE_LETTERS
        .iter()
        .position(|known| *known == letter)
        .unwrap_or(0)
}

/// Follows the arrows of one column of Table II-A from `row` to the row
/// with numbers.
pub fn resolve(row: usize, aql: Aql) -> (usize, u32, u32) {
    resolve_at(Severity::Normal, row, aql)
}

/// Follows the arrows of one column of the severity's table from `row` to
/// the row with numbers.
pub fn resolve_at(severity: Severity, row: usize, aql: Aql) -> (usize, u32, u32) {
    let table = severity.table();
    let mut row = row;
    // Each step moves one row; a well-formed table needs fewer steps than it has rows.
    for _ in 0..table.len() {
        match table[row][aql.0] {
            Cell::Plan(accept, reject) => return (row, accept, reject),
            Cell::Up => row -= 1,
            Cell::Down => row += 1,
        }
    }
    unreachable!(
        "the {} table's column {} has an arrow loop",
        severity.code(),
        aql.code()
    )
}

/// The single sampling plan for a lot under `tolerance` at normal
/// inspection; `None` for an empty lot.
pub fn plan(lot_size: u32, tolerance: Tolerance) -> Option<SamplingPlan> {
    plan_at(lot_size, tolerance, Severity::Normal)
}

/// The single sampling plan for a lot under `tolerance` at `severity`;
/// `None` for an empty lot.
///
/// Zero tolerance stays Ac 0 / Re 1 on the code letter's sample when
/// tightened: the acceptance number cannot go lower, and ISO 2859-1 keeps
/// the code letter's sample size at tightened inspection.
pub fn plan_at(lot_size: u32, tolerance: Tolerance, severity: Severity) -> Option<SamplingPlan> {
    plan_for(Level::II, lot_size, tolerance, severity)
}

/// [`plan_at`] at inspection level `level`: only the code letter of the lot
/// (Table I) depends on it; the tables of numbers are the same.
pub fn plan_for(
    level: Level,
    lot_size: u32,
    tolerance: Tolerance,
    severity: Severity,
) -> Option<SamplingPlan> {
    if lot_size == 0 {
        return None;
    }
    let row = code_letter_row_at(level, lot_size);
    let (plan_row, accept, reject) = match tolerance {
        Tolerance::Zero => (row, 0, 1),
        Tolerance::Aql(aql) => resolve_at(severity, row, aql),
    };
    let table_sample = SAMPLE_SIZES[plan_row];
    let full_inspection = table_sample >= lot_size;
    Some(SamplingPlan {
        lot_size,
        code_letter: CODE_LETTERS[row],
        plan_code_letter: CODE_LETTERS[plan_row],
        sample_size: table_sample.min(lot_size),
        accept,
        reject,
        full_inspection,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn table_i_gives_each_level_its_letter() {
        let letter = |level, lot| CODE_LETTERS[code_letter_row_at(level, lot)];
        // (lot size, I, II, III) as printed in ISO 2859-1 Table I.
        for (lot, i, ii, iii) in [
            (5, 'A', 'A', 'B'),
            (60, 'C', 'E', 'F'),
            (1_000, 'G', 'J', 'K'),
            (5_000, 'J', 'L', 'M'),
            (600_000, 'N', 'Q', 'R'),
        ] {
            assert_eq!(
                (
                    letter(Level::I, lot),
                    letter(Level::II, lot),
                    letter(Level::III, lot)
                ),
                (i, ii, iii),
                "lot {lot}"
            );
        }
    }

    fn aql(percent: f64) -> Tolerance {
        Tolerance::from_percent(percent).unwrap()
    }

    /// (lot size, AQL, plan letter, n, Ac, Re) as read from ISO 2859-1
    /// Tables I and II-A, general level II, normal inspection.
    const PUBLISHED: &[(u32, f64, char, u32, u32, u32)] = &[
        // J, n = 80
        (1_000, 0.65, 'J', 80, 1, 2),
        (1_000, 1.0, 'J', 80, 2, 3),
        (1_000, 1.5, 'J', 80, 3, 4),
        (1_000, 2.5, 'J', 80, 5, 6),
        (1_000, 4.0, 'J', 80, 7, 8),
        (1_000, 6.5, 'J', 80, 10, 11),
        (1_000, 0.15, 'J', 80, 0, 1),
        (1_000, 0.25, 'H', 50, 0, 1),   // arrow up
        (1_000, 0.40, 'K', 125, 1, 2),  // arrow down
        (1_000, 0.065, 'L', 200, 0, 1), // arrow down twice
        (1_000, 0.10, 'K', 125, 0, 1),  // arrow down
        // H, n = 50
        (500, 2.5, 'H', 50, 3, 4),
        (500, 4.0, 'H', 50, 5, 6),
        (500, 6.5, 'H', 50, 7, 8),
        (500, 1.0, 'H', 50, 1, 2),
        (500, 0.25, 'H', 50, 0, 1),
        (500, 0.65, 'J', 80, 1, 2), // arrow down
        (500, 0.40, 'G', 32, 0, 1), // arrow up
        // F, n = 20
        (150, 2.5, 'F', 20, 1, 2),
        (150, 4.0, 'F', 20, 2, 3),
        (150, 6.5, 'F', 20, 3, 4),
        (150, 0.65, 'F', 20, 0, 1),
        (150, 1.0, 'E', 13, 0, 1), // arrow up
        (150, 1.5, 'G', 32, 1, 2), // arrow down
        // G, n = 32
        (280, 2.5, 'G', 32, 2, 3),
        (280, 4.0, 'G', 32, 3, 4),
        (280, 0.65, 'F', 20, 0, 1), // arrow up
        // E, n = 13
        (90, 4.0, 'E', 13, 1, 2),
        (90, 6.5, 'E', 13, 2, 3),
        (90, 2.5, 'F', 20, 1, 2), // arrow down
        (90, 1.0, 'E', 13, 0, 1),
        // K, L, M, N, P, Q
        (3_200, 2.5, 'K', 125, 7, 8),
        (3_200, 4.0, 'K', 125, 10, 11),
        (3_200, 1.0, 'K', 125, 3, 4),
        (10_000, 2.5, 'L', 200, 10, 11),
        (10_000, 4.0, 'L', 200, 14, 15),
        (10_000, 6.5, 'L', 200, 21, 22),
        (10_000, 10.0, 'K', 125, 21, 22), // arrow up
        (35_000, 2.5, 'M', 315, 14, 15),
        (35_000, 6.5, 'L', 200, 21, 22), // arrow up
        (150_000, 1.0, 'N', 500, 10, 11),
        (150_000, 2.5, 'N', 500, 21, 22),
        (150_000, 4.0, 'M', 315, 21, 22), // arrow up
        (500_000, 0.65, 'P', 800, 10, 11),
        (500_000, 0.025, 'N', 500, 0, 1), // arrow up
        (600_000, 1.0, 'Q', 1_250, 21, 22),
        (600_000, 0.025, 'R', 2_000, 1, 2), // arrow down past level II
        (600_000, 0.040, 'Q', 1_250, 1, 2),
        // A, B, C, D
        (8, 6.5, 'A', 2, 0, 1),
        (15, 4.0, 'B', 3, 0, 1),
        (15, 6.5, 'A', 2, 0, 1), // arrow up
        (25, 2.5, 'C', 5, 0, 1),
        (25, 10.0, 'C', 5, 1, 2),
        (50, 1.5, 'D', 8, 0, 1),
        (50, 6.5, 'D', 8, 1, 2),
        (50, 4.0, 'E', 13, 1, 2), // arrow down
    ];

    #[test]
    fn published_plans() {
        for &(lot, percent, letter, n, ac, re) in PUBLISHED {
            let plan = plan(lot, aql(percent)).unwrap();
            assert_eq!(
                (
                    plan.plan_code_letter,
                    plan.sample_size,
                    plan.accept,
                    plan.reject
                ),
                (letter, n, ac, re),
                "lot {lot} AQL {percent}"
            );
        }
    }

    #[test]
    fn table_one_ranges() {
        let letter = |lot| CODE_LETTERS[code_letter_row(lot)];
        for (lot, expected) in [
            (2, 'A'),
            (8, 'A'),
            (9, 'B'),
            (15, 'B'),
            (16, 'C'),
            (26, 'D'),
            (51, 'E'),
            (91, 'F'),
            (150, 'F'),
            (151, 'G'),
            (281, 'H'),
            (501, 'J'),
            (1_200, 'J'),
            (1_201, 'K'),
            (3_201, 'L'),
            (10_001, 'M'),
            (35_001, 'N'),
            (150_001, 'P'),
            (500_000, 'P'),
            (500_001, 'Q'),
            (u32::MAX, 'Q'),
        ] {
            assert_eq!(letter(lot), expected, "lot {lot}");
        }
    }

    #[test]
    fn small_lots_are_inspected_in_full() {
        // Lot 10 is B (n = 3), but AQL 0.65 points down to F (n = 20).
        let plan = plan(10, aql(0.65)).unwrap();
        assert_eq!(plan.code_letter, 'B');
        assert_eq!(plan.plan_code_letter, 'F');
        assert_eq!((plan.sample_size, plan.accept, plan.reject), (10, 0, 1));
        assert!(plan.full_inspection);

        let one = super::plan(1, aql(2.5)).unwrap();
        assert_eq!((one.sample_size, one.full_inspection), (1, true));
        assert!(super::plan(0, aql(2.5)).is_none());

        let normal = super::plan(1_000, aql(2.5)).unwrap();
        assert!(!normal.full_inspection);
    }

    #[test]
    fn zero_tolerance_uses_the_code_letters_sample() {
        let plan = plan(1_000, Tolerance::Zero).unwrap();
        assert_eq!(
            (
                plan.plan_code_letter,
                plan.sample_size,
                plan.accept,
                plan.reject
            ),
            ('J', 80, 0, 1)
        );
        assert!(plan.rejects(1));
        assert!(!plan.rejects(0));
    }

    #[test]
    fn aql_values_parse_and_print() {
        assert_eq!(Tolerance::from_percent(0.0), Some(Tolerance::Zero));
        assert_eq!(
            Tolerance::from_percent(2.5).map(Tolerance::code),
            Some("2.5")
        );
        assert_eq!(
            Tolerance::from_percent(0.1).map(Tolerance::code),
            Some("0.10")
        );
        assert_eq!(Tolerance::from_percent(3.0), None);
        assert_eq!(Tolerance::from_percent(-2.5), None);
        assert_eq!(Tolerance::from_percent(f64::NAN), None);
        for (code, _) in AQL_COLUMNS {
            assert_eq!(Tolerance::from_code(code).map(Tolerance::code), Some(code));
        }
        assert_eq!(Tolerance::from_code("0"), Some(Tolerance::Zero));
    }

    /// The structure of the printed table, checked cell by cell: every
    /// column reads down as arrows, 0/1, up, down, then the Ac series, then
    /// up arrows; and a plan repeats one row down and one column left.
    #[test]
    fn table_has_the_standards_shape() {
        let series = [
            (0, 1),
            (1, 2),
            (2, 3),
            (3, 4),
            (5, 6),
            (7, 8),
            (10, 11),
            (14, 15),
            (21, 22),
        ];
        assert!(TABLE_II_A[0].iter().all(|cell| *cell != Cell::Up));
        assert!(TABLE_II_A[15].iter().all(|cell| *cell != Cell::Down));
        for col in 0..AQL_COLUMNS.len() {
            let plans: Vec<(u32, u32)> = TABLE_II_A
                .iter()
                .filter_map(|row| match row[col] {
                    Cell::Plan(ac, re) => Some((ac, re)),
                    _ => None,
                })
                .collect();
            let start = series.iter().position(|s| *s == plans[0]).unwrap();
            assert_eq!(
                plans.as_slice(),
                &series[start..start + plans.len()],
                "column {col}"
            );
            for plan in &plans {
                assert_eq!(plan.1, plan.0 + 1);
            }
        }
        for row in 1..16 {
            for col in 0..13 {
                if let Cell::Plan(..) = TABLE_II_A[row - 1][col + 1]
                    && TABLE_II_A[row][col] != TABLE_II_A[row - 1][col + 1]
                {
                    // The only break of the diagonal is at the top: row A
                    // cannot point up, so its 10 % cell points down.
                    panic!("row {row} col {col} breaks the diagonal");
                }
            }
        }
    }

    proptest! {
        /// Any lot and column resolves to a plan with Re = Ac + 1 and a
        /// sample that never exceeds the lot.
        #[test]
        fn every_lot_and_aql_has_a_plan(lot in 1u32..=u32::MAX, col in 0usize..14) {
            let plan = plan(lot, Tolerance::Aql(Aql(col))).unwrap();
            prop_assert_eq!(plan.reject, plan.accept + 1);
            prop_assert!(plan.sample_size <= lot);
            prop_assert!(plan.sample_size >= 1);
            prop_assert_eq!(plan.full_inspection, plan.sample_size == lot && SAMPLE_SIZES[row_of(plan.plan_code_letter)] >= lot);
        }

        /// A larger lot never gets a smaller sample for the same AQL
        /// (before the lot caps it).
        #[test]
        fn samples_grow_with_the_lot(lot in 2u32..2_000_000, extra in 0u32..1_000_000, col in 0usize..14) {
            let small = plan(lot, Tolerance::Aql(Aql(col))).unwrap();
            let large = plan(lot + extra, Tolerance::Aql(Aql(col))).unwrap();
            prop_assert!(large.sample_size >= small.sample_size);
        }
    }
}
