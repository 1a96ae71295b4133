//! Money as people read it: minor units (how every message carries an
//! amount) shown in the currency's ISO 4217 minor unit, for notices,
//! summaries, the register and the CLI alike.

/// Digits after the decimal point of `currency` (ISO 4217; 2 for any code
/// not listed): how many minor units make one major unit, as a power of
/// ten. Finance converts between currencies with it, so a rate quoted per
/// major unit applies to amounts kept in minor units.
pub fn minor_exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `12345, "USD"` → `"123.45 USD"`.
pub fn money(minor: i64, currency: &str) -> String {
    format!("{} {currency}", amount(minor, currency))
}

/// `12345, "USD"` → `"123.45"`: the amount alone (for "12.00 → 12.50"
/// where the currency is said once).
pub fn amount(minor: i64, currency: &str) -> String {
    let exponent = minor_exponent(currency);
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10_u64.pow(exponent);
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = exponent as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_uses_the_currency_minor_unit() {
        assert_eq!(money(12_345, "USD"), "123.45 USD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(12_345, "JPY"), "12345 JPY");
        assert_eq!(money(12_345, "KWD"), "12.345 KWD");
        assert_eq!(money(-150, "CNY"), "-1.50 CNY");
        assert_eq!(money(i64::MIN, "USD"), "-92233720368547758.08 USD");
        assert_eq!(amount(1250, "USD"), "12.50");
        assert_eq!(amount(1250, "JPY"), "1250");
    }

    #[test]
    fn minor_exponents_follow_iso_4217() {
        assert_eq!(minor_exponent("JPY"), 0);
        assert_eq!(minor_exponent("USD"), 2);
        assert_eq!(minor_exponent("KWD"), 3);
        // Unknown codes are shown like most currencies.
        assert_eq!(minor_exponent("XYZ"), 2);
    }
}
