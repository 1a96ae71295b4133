//! Checks that need no database: each function turns a wire message into the
//! value the rest of the service trusts, or a [`FieldError`] naming the
//! offending field (`amount_minor`, `budget_lines[1].category`).
//!
//! Checks against stored state (is the currency the receivable's?) are done
//! by the callers with the same field names.

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_proto::date_from_str;
use gendan_proto::v1::{
    IssueCreditNote, LabourRate, OpenReceivable, RecordPaymentRequest, RecordRefundRequest,
};

use crate::costs::{CREDIT_NOTE, EXPEDITE, FREIGHT, INSPECTION, LABOUR, MATERIAL, REWORK};
use crate::credit_notes::AMENDMENT_CLAIM_PREFIX;
use crate::terms::{self, Installment};

mod estimates;
mod exchange_rates;

pub use estimates::{CostsToEstimate, estimate_costs, inspection_rate};
pub use exchange_rates::{NewExchangeRate, RatesQuery, exchange_rate, list_exchange_rates};

const MAX_TEXT: usize = 200;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;
pub const MAX_CLAIM_ID_CHARS: usize = 128;

/// Cost categories an order budget can be split into, in the order the
/// ledger lists them: every category [`crate::costs`] books.
pub const COST_CATEGORIES: [&str; 7] = [
    MATERIAL,
    LABOUR,
    REWORK,
    INSPECTION,
    FREIGHT,
    EXPEDITE,
    CREDIT_NOTE,
];

pub fn required_text(value: &str, field: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    optional_text(value, field)
}

pub fn optional_text(value: &str, field: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.chars().count() > MAX_TEXT {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// An ISO 4217-shaped code: three upper-case letters. Which codes exist is
/// the order's business (orders checks the list); finance only needs the
/// same code on everything of one order.
pub fn currency(value: &str, field: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.len() != 3 || !value.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(FieldError::new(
            field,
            format!("{value:?} is not an ISO 4217 currency code (three upper-case letters)"),
        ));
    }
    Ok(value.to_owned())
}

pub fn date(value: &str, field: &str) -> Result<NaiveDate, FieldError> {
    date_from_str(value.trim())
        .ok_or_else(|| FieldError::new(field, format!("{value:?} is not a YYYY-MM-DD date")))
}

/// A `YYYY-MM-DD` date, or `default` when empty.
pub fn date_or(value: &str, field: &str, default: NaiveDate) -> Result<NaiveDate, FieldError> {
    if value.trim().is_empty() {
        return Ok(default);
    }
    date(value, field)
}

pub fn order_id(value: &str) -> Result<String, FieldError> {
    required_text(value, "order_id")
}

/// A validated RecordPayment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub order_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub received_on: NaiveDate,
    pub reference: String,
    pub idempotency_key: String,
}

pub fn idempotency_key(value: &str) -> Result<String, FieldError> {
    let field = "idempotency_key";
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if !value.chars().all(allowed) {
        return Err(FieldError::new(
            field,
            "may contain only letters, digits and . _ : -",
        ));
    }
    Ok(value.to_owned())
}

/// `today` bounds the value date: money received tomorrow has not been
/// received (one day of slack for time zones).
pub fn payment(request: &RecordPaymentRequest, today: NaiveDate) -> Result<NewPayment, FieldError> {
    let order_id = order_id(&request.order_id)?;
    if request.amount_minor <= 0 {
        return Err(FieldError::new(
            "amount_minor",
            format!("must be greater than 0, got {}", request.amount_minor),
        ));
    }
    let currency = currency(&request.currency, "currency")?;
    let received_on = date(&request.received_on, "received_on")?;
    if received_on > today + chrono::Days::new(1) {
        return Err(FieldError::new(
            "received_on",
            format!("{received_on} is in the future"),
        ));
    }
    let reference = optional_text(&request.reference, "reference")?;
    let idempotency_key = idempotency_key(&request.idempotency_key)?;
    Ok(NewPayment {
        order_id,
        amount_minor: request.amount_minor,
        currency,
        received_on,
        reference,
        idempotency_key,
    })
}

/// A validated RecordRefund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub order_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub paid_on: NaiveDate,
    pub reference: String,
    pub idempotency_key: String,
}

/// `today` bounds the value date: finance pays refunds from its own bank,
/// so unlike a customer's payment there is no time zone to allow for. The
/// upper bound of the amount (what is due) is checked against the stored
/// refund, under the same field name.
pub fn refund(request: &RecordRefundRequest, today: NaiveDate) -> Result<NewRefund, FieldError> {
    let order_id = order_id(&request.order_id)?;
    if request.amount_minor <= 0 {
        return Err(FieldError::new(
            "amount_minor",
            format!("must be greater than 0, got {}", request.amount_minor),
        ));
    }
    let currency = currency(&request.currency, "currency")?;
    let paid_on = date(&request.paid_on, "paid_on")?;
    if paid_on > today {
        return Err(FieldError::new(
            "paid_on",
            format!("{paid_on} is in the future"),
        ));
    }
    let reference = optional_text(&request.reference, "reference")?;
    let idempotency_key = idempotency_key(&request.idempotency_key)?;
    Ok(NewRefund {
        order_id,
        amount_minor: request.amount_minor,
        currency,
        paid_on,
        reference,
        idempotency_key,
    })
}

/// A validated IssueCreditNote command. The checks against the receivable
/// (its currency, what is left to credit) are the caller's, under the same
/// field names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCreditNote {
    pub order_id: String,
    pub claim_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
}

pub fn credit_note(order_id: &str, command: &IssueCreditNote) -> Result<NewCreditNote, FieldError> {
    // The claim id is the idempotency key and names the event's fact: it is
    // taken as sent (not trimmed), so " CLM-1" cannot pass for "CLM-1".
    let claim_id = command.claim_id.as_str();
    let claim_chars = claim_id.chars().count();
    if !(1..=MAX_CLAIM_ID_CHARS).contains(&claim_chars) || claim_id.trim().is_empty() {
        return Err(FieldError::new(
            "claim_id",
            format!("must be 1 to {MAX_CLAIM_ID_CHARS} characters, not blank, got {claim_chars}"),
        ));
    }
    if claim_id.starts_with(AMENDMENT_CLAIM_PREFIX) {
        // Finance issues those itself for amended orders: a claim with such
        // an id would be answered with an amendment's note.
        return Err(FieldError::new(
            "claim_id",
            format!(
                "{claim_id:?} starts with {AMENDMENT_CLAIM_PREFIX:?}, which names the credit notes \
                 of amended orders"
            ),
        ));
    }
    if command.amount_minor <= 0 {
        return Err(FieldError::new(
            "amount_minor",
            format!("must be greater than 0, got {}", command.amount_minor),
        ));
    }
    let currency = currency(&command.currency, "currency")?;
    let reason = optional_text(&command.reason, "reason")?;
    Ok(NewCreditNote {
        order_id: order_id.to_owned(),
        claim_id: claim_id.to_owned(),
        amount_minor: command.amount_minor,
        currency,
        reason,
    })
}

pub fn labour_rate(request: &LabourRate) -> Result<LabourRate, FieldError> {
    let work_centre = required_text(&request.work_centre, "work_centre")?;
    let currency = currency(&request.currency, "currency")?;
    if request.rate_minor_per_hour < 0 {
        return Err(FieldError::new(
            "rate_minor_per_hour",
            format!("must not be negative, got {}", request.rate_minor_per_hour),
        ));
    }
    Ok(LabourRate {
        work_centre,
        currency,
        rate_minor_per_hour: request.rate_minor_per_hour,
    })
}

/// A validated OpenReceivable command, priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceivable {
    pub order_id: String,
    pub customer: String,
    pub total_minor: i64,
    pub currency: String,
    pub payment_terms: String,
    pub installments: Vec<Installment>,
    pub cost_budget_minor: i64,
    pub budget_lines: Vec<(String, i64)>,
    /// The customer's own dunning schedule; `None`: finance's.
    pub reminder_days: Option<crate::dunning::Schedule>,
}

/// Checks an OpenReceivable command. The error text is the reason the saga
/// sees in `ReceivableOpeningFailed`.
pub fn open_receivable(
    order_id: &str,
    command: &OpenReceivable,
) -> Result<NewReceivable, crate::Error> {
    let customer = optional_text(&command.customer, "customer")?;
    if command.total_minor <= 0 {
        return Err(FieldError::new(
            "total_minor",
            format!("must be greater than 0, got {}", command.total_minor),
        )
        .into());
    }
    let currency = currency(&command.currency, "currency")?;
    let payment_terms = required_text(&command.payment_terms, "payment_terms")?;
    let parsed = terms::parse(&payment_terms)?;
    let installments = terms::installments(&parsed, command.total_minor)
        .ok_or_else(|| crate::Error::Overflow(order_id.to_owned()))?;
    if command.cost_budget_minor < 0 {
        return Err(FieldError::new("cost_budget_minor", "must not be negative").into());
    }
    let mut budget_lines: Vec<(String, i64)> = Vec::with_capacity(command.budget_lines.len());
    let mut lines_total: i64 = 0;
    for (i, line) in command.budget_lines.iter().enumerate() {
        let category = line.category.trim().to_ascii_lowercase();
        if !COST_CATEGORIES.contains(&category.as_str()) {
            return Err(FieldError::new(
                format!("budget_lines[{i}].category"),
                format!(
                    "{:?} is not one of {}",
                    line.category,
                    COST_CATEGORIES.join(", ")
                ),
            )
            .into());
        }
        if budget_lines.iter().any(|(known, _)| *known == category) {
            return Err(FieldError::new(
                format!("budget_lines[{i}].category"),
                format!("{category:?} appears twice"),
            )
            .into());
        }
        if line.amount_minor < 0 {
            return Err(FieldError::new(
                format!("budget_lines[{i}].amount_minor"),
                "must not be negative",
            )
            .into());
        }
        lines_total = lines_total.checked_add(line.amount_minor).ok_or_else(|| {
            FieldError::new(
                format!("budget_lines[{i}].amount_minor"),
                "the budget total is too large",
            )
        })?;
        budget_lines.push((category, line.amount_minor));
    }
    let cost_budget_minor = match (command.cost_budget_minor, budget_lines.is_empty()) {
        (total, true) => total,
        (0, false) => lines_total,
        (total, false) if total == lines_total => total,
        (total, false) => {
            return Err(FieldError::new(
                "budget_lines",
                format!("the lines add up to {lines_total}, not cost_budget_minor {total}"),
            )
            .into());
        }
    };
    let reminder_days = match command.dunning_reminder_days.as_slice() {
        [] => None,
        days => Some(crate::dunning::Schedule::new(days).map_err(|err| {
            // The rule is the schedule's; the field is this command's.
            FieldError::new(
                err.field
                    .replacen("reminder_days", "dunning_reminder_days", 1),
                err.problem,
            )
        })?),
    };
    Ok(NewReceivable {
        order_id: order_id.to_owned(),
        customer,
        total_minor: command.total_minor,
        currency,
        payment_terms,
        installments,
        cost_budget_minor,
        budget_lines,
        reminder_days,
    })
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::CostBudgetLine;

    use super::*;

    fn request() -> RecordPaymentRequest {
        RecordPaymentRequest {
            order_id: "o-1".into(),
            amount_minor: 100,
            currency: "USD".into(),
            received_on: "2026-03-02".into(),
            reference: "SWIFT 123".into(),
            idempotency_key: "bank:123".into(),
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
    }

    #[test]
    fn payment_errors_name_the_field() {
        assert!(payment(&request(), today()).is_ok());
        type Change = fn(&mut RecordPaymentRequest);
        let cases: [(Change, &str); 6] = [
            (|r| r.order_id = " ".into(), "order_id"),
            (|r| r.amount_minor = 0, "amount_minor"),
            (|r| r.currency = "usd".into(), "currency"),
            (|r| r.received_on = "2026-03-09".into(), "received_on"),
            (|r| r.idempotency_key = String::new(), "idempotency_key"),
            (|r| r.idempotency_key = "a b".into(), "idempotency_key"),
        ];
        for (change, field) in cases {
            let mut bad = request();
            change(&mut bad);
            assert_eq!(payment(&bad, today()).unwrap_err().field, field);
        }
    }

    #[test]
    fn refund_errors_name_the_field() {
        let request = || RecordRefundRequest {
            order_id: "o-1".into(),
            amount_minor: 100,
            currency: "USD".into(),
            paid_on: "2026-03-02".into(),
            reference: "refund".into(),
            idempotency_key: "refund:1".into(),
        };
        assert!(refund(&request(), today()).is_ok());
        type Change = fn(&mut RecordRefundRequest);
        let cases: [(Change, &str); 7] = [
            (|r| r.order_id = String::new(), "order_id"),
            (|r| r.amount_minor = -1, "amount_minor"),
            (|r| r.currency = "US".into(), "currency"),
            (|r| r.paid_on = "2026-03-03".into(), "paid_on"),
            (|r| r.paid_on = "2 March".into(), "paid_on"),
            (|r| r.reference = "x".repeat(201), "reference"),
            (|r| r.idempotency_key = "k".repeat(129), "idempotency_key"),
        ];
        for (change, field) in cases {
            let mut bad = request();
            change(&mut bad);
            assert_eq!(refund(&bad, today()).unwrap_err().field, field);
        }
    }

    #[test]
    fn credit_note_errors_name_the_field() {
        let command = || IssueCreditNote {
            order_id: "o-1".into(),
            claim_id: "CLM-1".into(),
            amount_minor: 4_000,
            currency: "USD".into(),
            reason: "claim CLM-1 resolved by a credit note".into(),
        };
        assert_eq!(credit_note("o-1", &command()).unwrap().claim_id, "CLM-1");
        assert!(
            credit_note(
                "o-1",
                &IssueCreditNote {
                    claim_id: "c".repeat(128),
                    ..command()
                }
            )
            .is_ok()
        );
        type Change = fn(&mut IssueCreditNote);
        let cases: [(Change, &str); 7] = [
            (|c| c.claim_id = String::new(), "claim_id"),
            (|c| c.claim_id = "  ".into(), "claim_id"),
            (|c| c.claim_id = "c".repeat(129), "claim_id"),
            (|c| c.amount_minor = 0, "amount_minor"),
            (|c| c.amount_minor = -5, "amount_minor"),
            (|c| c.currency = "usd".into(), "currency"),
            (|c| c.reason = "r".repeat(201), "reason"),
        ];
        for (change, field) in cases {
            let mut bad = command();
            change(&mut bad);
            assert_eq!(credit_note("o-1", &bad).unwrap_err().field, field);
        }
        let amendment = IssueCreditNote {
            claim_id: "amendment:2".into(),
            ..command()
        };
        assert_eq!(
            credit_note("o-1", &amendment).unwrap_err().field,
            "claim_id"
        );
    }

    fn open() -> OpenReceivable {
        OpenReceivable {
            order_id: "o-1".into(),
            customer: "Nordwind".into(),
            total_minor: 1_000_000,
            currency: "USD".into(),
            payment_terms: "30% deposit, 70% against B/L copy".into(),
            cost_budget_minor: 0,
            budget_lines: vec![],
            revision: 0,
            dunning_reminder_days: vec![],
        }
    }

    #[test]
    fn budget_lines_set_or_match_the_budget() {
        let mut command = open();
        command.budget_lines = vec![
            CostBudgetLine {
                category: "material".into(),
                amount_minor: 400,
            },
            CostBudgetLine {
                category: "Labour".into(),
                amount_minor: 100,
            },
        ];
        assert_eq!(
            open_receivable("o-1", &command).unwrap().cost_budget_minor,
            500
        );
        command.cost_budget_minor = 600;
        assert!(
            open_receivable("o-1", &command)
                .unwrap_err()
                .to_string()
                .contains("budget_lines")
        );
        command.budget_lines[1].category = "lunch".into();
        assert!(
            open_receivable("o-1", &command)
                .unwrap_err()
                .to_string()
                .contains("budget_lines[1].category")
        );
    }

    #[test]
    fn unknown_terms_name_the_text() {
        let mut command = open();
        command.payment_terms = "L/C at sight".into();
        let err = open_receivable("o-1", &command).unwrap_err();
        assert!(err.to_string().contains("\"L/C at sight\""), "{err}");
    }
}
