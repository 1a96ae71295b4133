//! Exchange-rate arithmetic, pure: parsing and showing rates, inverting
//! them and converting amounts in minor units.
//!
//! A rate is the number of units of one currency for one unit of another
//! ("7.103" CNY per USD), kept as an integer scaled by [`RATE_SCALE`]
//! (10^10: ten decimal places, which every published rate fits), so a rate
//! read back is exactly the one given and conversion is integer arithmetic
//! in `i128`. Amounts are in minor units; the currencies' minor exponents
//! ([`gendan_proto::minor_exponent`]) turn the per-unit rate into a rate
//! between minor units (1,000 JPY at 0.0067 USD is 670 cents; 100.00 USD at
//! 0.3075 KWD is 30.750 KWD).
//!
//! Rounding rule: each amount is converted on its own and rounded once,
//! half away from zero, to the target's minor unit. The cost ledger
//! converts per entry, so its total is the sum of converted entries; that
//! differs from converting the entries' sum in one go by at most half a
//! minor unit per entry (plus half for the one-go figure), always less than
//! one minor unit per entry. Estimates and ledgers both convert per line,
//! so they agree with each other.

use gendan_proto::minor_exponent;

/// A rate `r` is stored as `r × RATE_SCALE`.
pub const RATE_SCALE: i64 = 10_000_000_000;

/// Decimal places a rate may have (the digits of [`RATE_SCALE`]).
const RATE_DECIMALS: usize = 10;

/// Rates at or above this are refused: no real pair is that far apart,
/// and the bound keeps every product within `i128`.
const MAX_RATE_UNITS: i64 = 1_000_000;

/// Parses a rate written as plain decimal text ("7.103", "0.1408", "2"):
/// digits with at most one '.', at most ten decimal places, above 0 and
/// below 1,000,000. No sign, no exponent, no thousands separators: a rate
/// typed wrong must be refused, not guessed at.
pub fn parse_rate(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let (units, decimals) = match text.split_once('.') {
        Some((units, decimals)) => (units, Some(decimals)),
        None => (text, None),
    };
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if units.is_empty() || !all_digits(units) {
        return Err(format!(
            "{text:?} is not a decimal number (digits and at most one '.', like \"7.103\")"
        ));
    }
    let decimals = decimals.unwrap_or("");
    if text.contains('.') && decimals.is_empty() {
        return Err(format!("{text:?} has no digits after the '.'"));
    }
    if !all_digits(decimals) {
        return Err(format!(
            "{text:?} is not a decimal number (digits and at most one '.', like \"7.103\")"
        ));
    }
    if decimals.len() > RATE_DECIMALS {
        return Err(format!(
            "{text:?} has {} decimal places, at most {RATE_DECIMALS} are kept",
            decimals.len()
        ));
    }
    // Leading zeros are harmless ("007.1"); what is left must stay below
    // the bound, checked before it could overflow.
    let significant = units.trim_start_matches('0');
    let units: i64 = if significant.is_empty() {
        0
    } else if significant.len() > 7 {
        MAX_RATE_UNITS
    } else {
        significant
            .parse()
            .map_err(|_| format!("{text:?} is not a decimal number"))?
    };
    if units >= MAX_RATE_UNITS {
        return Err(format!("{text:?} must be below {MAX_RATE_UNITS}"));
    }
    let fraction: i64 = format!("{decimals:0<width$}", width = RATE_DECIMALS)
        .parse()
        .map_err(|_| format!("{text:?} is not a decimal number"))?;
    let scaled = units * RATE_SCALE + fraction;
    if scaled == 0 {
        return Err(format!("{text:?} must be greater than 0"));
    }
    Ok(scaled)
}

/// The shortest decimal text of a scaled rate: trailing zeros trimmed, no
/// '.' for a whole number ("7.103", "0.1408", "2").
pub fn format_rate(scaled: i64) -> String {
    let sign = if scaled < 0 { "-" } else { "" };
    let magnitude = scaled.unsigned_abs();
    let scale = RATE_SCALE.unsigned_abs();
    let units = magnitude / scale;
    let fraction = magnitude % scale;
    if fraction == 0 {
        return format!("{sign}{units}");
    }
    let decimals = format!("{fraction:0width$}", width = RATE_DECIMALS);
    format!("{sign}{units}.{}", decimals.trim_end_matches('0'))
}

/// `numerator / denominator` rounded half away from zero; `None` when the
/// denominator is 0.
fn divide_rounded(numerator: i128, denominator: i128) -> Option<i128> {
    if denominator == 0 {
        return None;
    }
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    // |remainder| ≥ |denominator| / 2, compared without halving so odd
    // denominators round exactly.
    if remainder.unsigned_abs() * 2 >= denominator.unsigned_abs() {
        let away = if (numerator < 0) == (denominator < 0) {
            1
        } else {
            -1
        };
        Some(quotient + away)
    } else {
        Some(quotient)
    }
}

/// The rate of the opposite direction, `1 / rate`, at the same scale and
/// rounded half away from zero (7.103 CNY per USD → 0.1407855836 USD per
/// CNY). `None` for a rate of 0 or an inverse beyond `i64`.
pub fn invert(scaled: i64) -> Option<i64> {
    let scale = i128::from(RATE_SCALE);
    let inverse = divide_rounded(scale * scale, i128::from(scaled))?;
    i64::try_from(inverse).ok()
}

/// What converting from `from` to `to` multiplies and divides by besides
/// the scaled rate: `amount × scaled × multiplier / divisor`, where the
/// currencies' minor exponents set the powers of ten. Both fit an `i64`
/// (exponents are 0 to 3), so SQL can convert the same way ([`convert`]'s
/// rounding, for amounts that are never negative, is
/// `(amount × scaled × multiplier + divisor / 2) div divisor`).
pub fn factors(from: &str, to: &str) -> (i64, i64) {
    let exponent_from = minor_exponent(from);
    let exponent_to = minor_exponent(to);
    let power = |exponent: u32| 10_i64.pow(exponent);
    if exponent_to >= exponent_from {
        (power(exponent_to - exponent_from), RATE_SCALE)
    } else {
        (1, RATE_SCALE * power(exponent_from - exponent_to))
    }
}

/// `amount_minor` of `from` in minor units of `to` at `scaled` (units of
/// `to` per unit of `from`): amount × rate × 10^(exponent of `to` −
/// exponent of `from`), rounded once, half away from zero. `None` when the
/// result does not fit an `i64`. Callers do not convert an amount into its
/// own currency; at a rate of 1 between currencies of equal exponent the
/// amount comes back unchanged all the same.
pub fn convert(amount_minor: i64, from: &str, to: &str, scaled: i64) -> Option<i64> {
    let (multiplier, divisor) = factors(from, to);
    let numerator = i128::from(amount_minor)
        .checked_mul(i128::from(scaled))?
        .checked_mul(i128::from(multiplier))?;
    i64::try_from(divide_rounded(numerator, i128::from(divisor))?).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rate(text: &str) -> i64 {
        parse_rate(text).unwrap()
    }

    #[test]
    fn rates_parse_exactly() {
        assert_eq!(rate("7.103"), 71_030_000_000);
        assert_eq!(rate("0.1408"), 1_408_000_000);
        assert_eq!(rate("2"), 2 * RATE_SCALE);
        assert_eq!(rate(" 007.50 "), 75_000_000_000);
        assert_eq!(rate("0.0000000001"), 1);
        assert_eq!(
            rate("999999.9999999999"),
            999_999 * RATE_SCALE + 9_999_999_999
        );
    }

    #[test]
    fn bad_rates_say_what_is_wrong() {
        let cases = [
            ("", "empty"),
            ("0", "greater than 0"),
            ("0.0000", "greater than 0"),
            ("-1.5", "not a decimal"),
            ("+1.5", "not a decimal"),
            ("1e3", "not a decimal"),
            ("1,5", "not a decimal"),
            ("1.2.3", "not a decimal"),
            (".5", "not a decimal"),
            ("5.", "no digits after"),
            ("0.00000000001", "11 decimal places"),
            ("1000000", "below 1000000"),
            ("123456789012345678901", "below 1000000"),
        ];
        for (text, problem) in cases {
            let err = parse_rate(text).unwrap_err();
            assert!(err.contains(problem), "{text:?}: {err}");
        }
    }

    #[test]
    fn rates_show_their_shortest_form() {
        assert_eq!(format_rate(71_030_000_000), "7.103");
        assert_eq!(format_rate(1_408_000_000), "0.1408");
        assert_eq!(format_rate(2 * RATE_SCALE), "2");
        assert_eq!(format_rate(1), "0.0000000001");
    }

    #[test]
    fn inverting_rounds_half_away_from_zero() {
        assert_eq!(invert(rate("7.103")), Some(1_407_855_836));
        assert_eq!(invert(rate("0.5")), Some(2 * RATE_SCALE));
        assert_eq!(invert(rate("3")), Some(3_333_333_333));
        assert_eq!(invert(rate("1.5")), Some(6_666_666_667));
        assert_eq!(invert(0), None);
        // 1 / 0.0000000001 is 10^10, beyond an i64 at this scale.
        assert_eq!(invert(1), None);
    }

    #[test]
    fn exponents_move_the_decimal_point() {
        // 1,000 JPY (no minor unit) at 0.0067 USD per JPY is 6.70 USD.
        assert_eq!(convert(1_000, "JPY", "USD", rate("0.0067")), Some(670));
        // 1 JPY is 0.67 cents: one cent.
        assert_eq!(convert(1, "JPY", "USD", rate("0.0067")), Some(1));
        // 100.00 USD at 0.3075 KWD per USD is 30.750 KWD (fils).
        assert_eq!(convert(10_000, "USD", "KWD", rate("0.3075")), Some(30_750));
        // And back: 30.750 KWD at 3.252 USD per KWD is 100.00 USD (99.999).
        assert_eq!(convert(30_750, "KWD", "USD", rate("3.252")), Some(10_000));
        // 1,200.00 CNY at 0.1408 USD per CNY.
        assert_eq!(convert(120_000, "CNY", "USD", rate("0.1408")), Some(16_896));
    }

    #[test]
    fn halves_round_away_from_zero() {
        // 5 fils is half a cent.
        assert_eq!(convert(5, "KWD", "USD", RATE_SCALE), Some(1));
        assert_eq!(convert(-5, "KWD", "USD", RATE_SCALE), Some(-1));
        assert_eq!(convert(4, "KWD", "USD", RATE_SCALE), Some(0));
        assert_eq!(convert(50, "USD", "JPY", RATE_SCALE), Some(1));
    }

    #[test]
    fn overflow_is_none() {
        assert_eq!(convert(i64::MAX, "JPY", "KWD", rate("999999")), None);
        assert_eq!(convert(i64::MAX, "USD", "EUR", 2 * RATE_SCALE), None);
    }

    #[test]
    fn factors_carry_the_exponents() {
        assert_eq!(factors("USD", "EUR"), (1, RATE_SCALE));
        assert_eq!(factors("JPY", "KWD"), (1_000, RATE_SCALE));
        assert_eq!(factors("KWD", "JPY"), (1, 1_000 * RATE_SCALE));
    }

    fn currency() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["USD", "EUR", "CNY", "JPY", "KRW", "KWD", "BHD"])
    }

    /// Rates from 0.0000000001 to 1,000 (every pair worth converting lies
    /// in there; larger ones only overflow sooner).
    fn scaled_rate() -> impl Strategy<Value = i64> {
        prop_oneof![1..=RATE_SCALE, RATE_SCALE..=1_000 * RATE_SCALE]
    }

    proptest! {
        #[test]
        fn converting_per_line_is_within_one_minor_unit_per_line(
            lines in prop::collection::vec(0..1_000_000_000_000_i64, 1..50),
            from in currency(),
            to in currency(),
            scaled in scaled_rate(),
        ) {
            let total: i64 = lines.iter().sum();
            // The whole in one go may not fit where the lines do: nothing
            // to compare then.
            let Some(at_once) = convert(total, from, to, scaled) else {
                return Ok(());
            };
            let per_line: i64 = lines
                .iter()
                .map(|line| convert(*line, from, to, scaled).expect("a line is at most the total"))
                .sum();
            let difference = (per_line - at_once).unsigned_abs();
            prop_assert!(
                difference <= lines.len() as u64,
                "{} lines: per line {per_line}, at once {at_once}",
                lines.len()
            );
        }

        #[test]
        fn the_sql_formula_rounds_like_convert(
            amount in 0..i64::MAX / 1_000,
            from in currency(),
            to in currency(),
            scaled in scaled_rate(),
        ) {
            // What exchange_rates values waiting entries with, in SQL.
            let (multiplier, divisor) = factors(from, to);
            let numerator = i128::from(amount) * i128::from(scaled) * i128::from(multiplier);
            let in_sql = (numerator + i128::from(divisor / 2)) / i128::from(divisor);
            prop_assert_eq!(
                convert(amount, from, to, scaled),
                i64::try_from(in_sql).ok()
            );
        }

        #[test]
        fn a_formatted_rate_parses_back(scaled in 1..MAX_RATE_UNITS * RATE_SCALE) {
            prop_assert_eq!(parse_rate(&format_rate(scaled)), Ok(scaled));
        }

        #[test]
        fn a_rate_of_one_between_equal_exponents_is_the_identity(
            amount in any::<i64>(),
            (from, to) in prop::sample::select(vec![
                ("USD", "EUR"), ("EUR", "CNY"), ("JPY", "KRW"), ("KWD", "BHD"), ("USD", "USD"),
            ]),
        ) {
            prop_assert_eq!(convert(amount, from, to, RATE_SCALE), Some(amount));
        }

        #[test]
        fn inverting_twice_comes_back_close(scaled in RATE_SCALE / 1_000..1_000 * RATE_SCALE) {
            // Each inversion rounds by half a unit of the scale; the second
            // magnifies the first's error by rate², so the bound is relative.
            let back = invert(invert(scaled).unwrap()).unwrap();
            let tolerance = 1 + scaled / 1_000_000;
            prop_assert!((back - scaled).abs() <= tolerance, "{scaled} → {back}");
        }
    }
}
