//! Checks a `Customer` field by field and turns it into a [`NewCustomer`],
//! the only shape [`super::store`] writes.
//!
//! Each rule fails with a [`FieldError`] naming the field (`country`,
//! `dunning_reminder_days[2]`), and every field has an upper bound. The
//! defaults an order takes from its customer pass the very checks
//! CreateOrder applies to them ([`crate::validate`]'s currency, incoterm
//! and payment-terms rules), so a default can never make an order that
//! CreateOrder would have refused. The reminder days follow finance's
//! `DunningSchedule` rule (`gendan_finance::dunning::Schedule`), repeated
//! here because orders does not depend on finance; empty is allowed here
//! and means "finance's schedule".

use gendan_grpc::FieldError;
use gendan_proto::v1::{Customer, InspectionLevel};

use crate::validate::{MAX_CUSTOMER_CHARS, MAX_PAYMENT_TERMS_CHARS};

pub const MAX_CUSTOMER_ID_CHARS: usize = 64;
pub const MAX_WEBHOOK_URL_CHARS: usize = 2000;
pub const MAX_FINAL_INSPECTION_FAILURES: u32 = 10;
/// As finance's `dunning::MAX_REMINDERS` and `dunning::MAX_DAY`.
pub const MAX_REMINDERS: usize = 10;
pub const MAX_REMINDER_DAY: u32 = 365;
/// 10^15 minor units: far above any credit line, far below `i64::MAX`, so
/// sums of limits and order totals cannot overflow.
pub const MAX_CREDIT_LIMIT_MINOR: i64 = 1_000_000_000_000_000;
/// 100 %.
pub const MAX_MARGIN_BP: u32 = 10_000;

/// The ISO 2859-1 preferred AQL values (percent nonconforming) from 0.065
/// to 10: the columns of its tables that a customer's major AQL may name.
pub const PREFERRED_AQLS: [f64; 12] = [
    0.065, 0.1, 0.15, 0.25, 0.4, 0.65, 1.0, 1.5, 2.5, 4.0, 6.5, 10.0,
];

/// ISO 3166-1 alpha-2 codes officially assigned (249), sorted. User-assigned
/// codes such as XK are not in the standard and are refused.
const ISO_3166_ALPHA_2: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// A validated customer, as the store writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    pub customer_id: String,
    pub name: String,
    pub country: String,
    pub currency: String,
    pub payment_terms: String,
    pub incoterm: String,
    /// `""`: the deployment's URL.
    pub notice_webhook_url: String,
    /// An `InspectionLevel` number.
    pub inspection_level: i32,
    pub major_aql: Option<f64>,
    pub final_inspection_failures: u32,
    pub dunning_reminder_days: Vec<u32>,
    pub credit_limit_minor: i64,
    pub min_margin_bp: u32,
}

/// Validates every field of an UpsertCustomer request (the output-only
/// timestamps are ignored); the first failing field is reported.
pub fn customer(request: &Customer) -> Result<NewCustomer, FieldError> {
    let customer_id = customer_id("customer_id", &request.customer_id)?;
    let name = crate::validate::text("name", &request.name, MAX_CUSTOMER_CHARS)?;
    let country = country(&request.country)?;
    let currency = crate::validate::currency(&request.currency)?;
    let payment_terms = crate::validate::text(
        "payment_terms",
        &request.payment_terms,
        MAX_PAYMENT_TERMS_CHARS,
    )?;
    let incoterm = crate::validate::incoterm(&request.incoterm)?;
    let notice_webhook_url = webhook_url(&request.notice_webhook_url)?;
    if InspectionLevel::try_from(request.inspection_level).is_err() {
        return Err(FieldError::new(
            "inspection_level",
            format!(
                "{} is not a known inspection level",
                request.inspection_level
            ),
        ));
    }
    if let Some(aql) = request.major_aql
        && !PREFERRED_AQLS.contains(&aql)
    {
        return Err(FieldError::new(
            "major_aql",
            format!(
                "{aql} is not an ISO 2859-1 preferred AQL (0.065, 0.1, 0.15, 0.25, 0.4, 0.65, \
                 1.0, 1.5, 2.5, 4.0, 6.5, 10); leave it unset for the product's plan"
            ),
        ));
    }
    if request.final_inspection_failures > MAX_FINAL_INSPECTION_FAILURES {
        return Err(FieldError::new(
            "final_inspection_failures",
            format!(
                "must be 0 (the deployment's default) to {MAX_FINAL_INSPECTION_FAILURES}, got {}",
                request.final_inspection_failures
            ),
        ));
    }
    reminder_days(&request.dunning_reminder_days)?;
    if !(0..=MAX_CREDIT_LIMIT_MINOR).contains(&request.credit_limit_minor) {
        return Err(FieldError::new(
            "credit_limit_minor",
            format!(
                "must be 0 (no limit) to {MAX_CREDIT_LIMIT_MINOR} minor units, got {}",
                request.credit_limit_minor
            ),
        ));
    }
    if request.min_margin_bp > MAX_MARGIN_BP {
        return Err(FieldError::new(
            "min_margin_bp",
            format!(
                "must be 0 (none) to {MAX_MARGIN_BP} basis points, got {}",
                request.min_margin_bp
            ),
        ));
    }
    Ok(NewCustomer {
        customer_id,
        name,
        country,
        currency,
        payment_terms,
        incoterm,
        notice_webhook_url,
        inspection_level: request.inspection_level,
        major_aql: request.major_aql,
        final_inspection_failures: request.final_inspection_failures,
        dunning_reminder_days: request.dunning_reminder_days.clone(),
        credit_limit_minor: request.credit_limit_minor,
        min_margin_bp: request.min_margin_bp,
    })
}

/// A customer id named by `field`: 1-64 characters of A-Z a-z 0-9 . _ -,
/// taken as given (an id is a code, so " X" is not "X").
pub fn customer_id(field: &str, value: &str) -> Result<String, FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_CUSTOMER_ID_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_CUSTOMER_ID_CHARS} characters"),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !value.chars().all(allowed) {
        return Err(FieldError::new(
            field,
            format!("{value:?} may contain only letters, digits and . _ -"),
        ));
    }
    Ok(value.to_owned())
}

/// ListCustomers' `name_contains`: trimmed; `None` when empty (every
/// customer).
pub fn name_filter(value: &str) -> Result<Option<String>, FieldError> {
    let value = value.trim();
    if value.chars().count() > MAX_CUSTOMER_CHARS {
        return Err(FieldError::new(
            "name_contains",
            format!("must be at most {MAX_CUSTOMER_CHARS} characters"),
        ));
    }
    Ok(Some(value).filter(|v| !v.is_empty()).map(str::to_owned))
}

fn country(code: &str) -> Result<String, FieldError> {
    if ISO_3166_ALPHA_2.binary_search(&code).is_ok() {
        return Ok(code.to_owned());
    }
    let upper = code.to_ascii_uppercase();
    let problem = if ISO_3166_ALPHA_2.binary_search(&upper.as_str()).is_ok() {
        format!("{code:?} must be upper case ({upper})")
    } else {
        format!("{code:?} is not an ISO 3166-1 alpha-2 country code (e.g. DE, US, CN)")
    };
    Err(FieldError::new("country", problem))
}

/// `""`, or a URL the notice webhook can post to ([`crate::webhook::parse_url`]).
fn webhook_url(value: &str) -> Result<String, FieldError> {
    let field = "notice_webhook_url";
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    if value.chars().count() > MAX_WEBHOOK_URL_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_WEBHOOK_URL_CHARS} characters"),
        ));
    }
    crate::webhook::parse_url(value)
        .map_err(|why| FieldError::new(field, format!("{value:?}: {why}")))?;
    Ok(value.to_owned())
}

/// Empty (finance's schedule), or 1 to 10 days, strictly increasing, each
/// 1-365: finance's `DunningSchedule` rule.
fn reminder_days(days: &[u32]) -> Result<(), FieldError> {
    let field = "dunning_reminder_days";
    if days.len() > MAX_REMINDERS {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_REMINDERS} days, got {}", days.len()),
        ));
    }
    for (i, day) in days.iter().enumerate() {
        if !(1..=MAX_REMINDER_DAY).contains(day) {
            return Err(FieldError::new(
                format!("{field}[{i}]"),
                format!("{day} is not a day from 1 to {MAX_REMINDER_DAY} after the due date"),
            ));
        }
        if let Some(previous) = i.checked_sub(1).map(|p| days[p])
            && *day <= previous
        {
            return Err(FieldError::new(
                format!("{field}[{i}]"),
                format!("{day} does not come after {previous}: days must be strictly increasing"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Customer {
        Customer {
            customer_id: "NORDWIND".to_owned(),
            name: "  Nordwind GmbH ".to_owned(),
            country: "DE".to_owned(),
            currency: "EUR".to_owned(),
            payment_terms: "30% T/T deposit, 70% against B/L copy".to_owned(),
            incoterm: "FOB".to_owned(),
            notice_webhook_url: "http://relay.internal:8080/nordwind".to_owned(),
            // INSPECTION_LEVEL_GENERAL_III
            inspection_level: 3,
            major_aql: Some(1.5),
            final_inspection_failures: 3,
            dunning_reminder_days: vec![3, 10, 30],
            credit_limit_minor: 50_000_000,
            min_margin_bp: 1200,
            ..Default::default()
        }
    }

    fn failing_field(request: &Customer) -> String {
        customer(request).expect_err("should be refused").field
    }

    #[test]
    fn a_valid_customer_is_taken_trimmed() {
        let checked = customer(&valid()).unwrap();
        assert_eq!(checked.name, "Nordwind GmbH");
        assert_eq!(checked.dunning_reminder_days, [3, 10, 30]);
        let plain = Customer {
            notice_webhook_url: String::new(),
            inspection_level: 0,
            major_aql: None,
            final_inspection_failures: 0,
            dunning_reminder_days: Vec::new(),
            credit_limit_minor: 0,
            min_margin_bp: 0,
            ..valid()
        };
        assert!(customer(&plain).is_ok());
        for aql in PREFERRED_AQLS {
            let request = Customer {
                major_aql: Some(aql),
                ..valid()
            };
            assert!(customer(&request).is_ok(), "{aql}");
        }
    }

    #[test]
    fn every_field_is_checked_and_named() {
        type Breaker = fn(&mut Customer);
        let cases: Vec<(&str, Breaker)> = vec![
            ("customer_id", |c| c.customer_id = String::new()),
            ("customer_id", |c| c.customer_id = "has space".to_owned()),
            ("customer_id", |c| c.customer_id = "X".repeat(65)),
            ("customer_id", |c| c.customer_id = "é".to_owned()),
            ("name", |c| c.name = " ".to_owned()),
            ("name", |c| c.name = "n".repeat(201)),
            ("country", |c| c.country = "de".to_owned()),
            ("country", |c| c.country = "XX".to_owned()),
            ("country", |c| c.country = "DEU".to_owned()),
            ("currency", |c| c.currency = "eur".to_owned()),
            ("currency", |c| c.currency = String::new()),
            ("payment_terms", |c| c.payment_terms = String::new()),
            ("payment_terms", |c| c.payment_terms = "p".repeat(201)),
            ("incoterm", |c| c.incoterm = "DDU".to_owned()),
            ("notice_webhook_url", |c| {
                c.notice_webhook_url = "ftp://example.com/hook".to_owned()
            }),
            ("notice_webhook_url", |c| {
                c.notice_webhook_url = "not a url".to_owned()
            }),
            ("notice_webhook_url", |c| {
                c.notice_webhook_url = format!("http://relay/{}", "x".repeat(2000))
            }),
            ("inspection_level", |c| c.inspection_level = 4),
            ("inspection_level", |c| c.inspection_level = -1),
            ("major_aql", |c| c.major_aql = Some(2.0)),
            ("major_aql", |c| c.major_aql = Some(0.0)),
            ("major_aql", |c| c.major_aql = Some(f64::NAN)),
            ("final_inspection_failures", |c| {
                c.final_inspection_failures = 11
            }),
            ("dunning_reminder_days", |c| {
                c.dunning_reminder_days = (1..=11).collect()
            }),
            ("dunning_reminder_days[0]", |c| {
                c.dunning_reminder_days = vec![0]
            }),
            ("dunning_reminder_days[1]", |c| {
                c.dunning_reminder_days = vec![5, 5]
            }),
            ("dunning_reminder_days[1]", |c| {
                c.dunning_reminder_days = vec![5, 366]
            }),
            ("credit_limit_minor", |c| c.credit_limit_minor = -1),
            ("credit_limit_minor", |c| {
                c.credit_limit_minor = MAX_CREDIT_LIMIT_MINOR + 1
            }),
            ("min_margin_bp", |c| c.min_margin_bp = 10_001),
        ];
        for (field, breaker) in cases {
            let mut request = valid();
            breaker(&mut request);
            assert_eq!(failing_field(&request), field, "{request:?}");
        }
    }

    #[test]
    fn the_country_list_is_sorted_and_complete() {
        assert_eq!(ISO_3166_ALPHA_2.len(), 249);
        assert!(ISO_3166_ALPHA_2.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(
            ISO_3166_ALPHA_2
                .iter()
                .all(|code| code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
        );
    }

    #[test]
    fn name_filters_are_trimmed_and_bounded() {
        assert_eq!(name_filter("  ").unwrap(), None);
        assert_eq!(name_filter(" gmbh ").unwrap().as_deref(), Some("gmbh"));
        assert_eq!(
            name_filter(&"n".repeat(201)).unwrap_err().field,
            "name_contains"
        );
    }
}
