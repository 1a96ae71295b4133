//! Checks a `CreateOrderRequest` field by field and turns it into an
//! [`OrderRequest`]: everything the request itself decides, with the
//! customer named ([`CustomerRef`]) but not yet looked up and the defaults
//! it left empty still open. Once [`crate::customers::resolve`] has found
//! the customer, [`OrderRequest::for_customer`] makes the [`NewOrder`], the
//! only shape the store accepts. Likewise an `AcceptOrderRequest` becomes
//! an [`Acceptance`], and order ids are checked here. The line rules
//! ([`order_lines`]) and the date rule are shared with AmendOrder
//! ([`crate::amendments::validate`]); the currency, incoterm and payment
//! terms rules with the customer master ([`crate::customers::validate`]).
//!
//! Each rule fails with a [`FieldError`] naming the field path the caller
//! sent (`lines[1].quantity`), so a sales system can point its user at the
//! exact cell. Money is summed with checked arithmetic: an order whose total
//! does not fit in `i64` minor units is refused, never wrapped.

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_proto::v1::{
    AcceptOrderRequest, CreateOrderRequest, Customer, CustomerRules, OrderLine,
};
use uuid::Uuid;

pub const MAX_REQUEST_ID_CHARS: usize = 128;
pub const MAX_CUSTOMER_CHARS: usize = 200;
pub const MAX_LINES: usize = 500;
pub const MAX_PRODUCT_CHARS: usize = 200;
pub const MAX_SPEC_CHARS: usize = 2000;
pub const MAX_PAYMENT_TERMS_CHARS: usize = 200;
pub const MAX_ACCEPTED_BY_CHARS: usize = 200;
pub const MAX_NOTE_CHARS: usize = 2000;

/// Incoterms 2020. FAS, FOB, CFR and CIF are meant for sea and inland
/// waterway transport; they are accepted for any order because the mode of
/// transport is only chosen at shipping.
pub const INCOTERMS_2020: [&str; 11] = [
    "EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF",
];

/// ISO 4217 codes of currencies an order can be priced in: the active list
/// without fund, precious-metal and testing codes (XAU, XTS, ...), plus codes
/// withdrawn so recently that contracts still name them (ANG, BGN).
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW",
    "ZWG",
];

/// A validated order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    pub product: String,
    pub spec: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

/// Who a CreateOrder request says the order is for, checked but not yet
/// looked up in the customer master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerRef {
    /// `customer_id` was given: that id and nothing else.
    Id(String),
    /// Only `customer` was given (trimmed): an id, else a name regardless
    /// of case.
    IdOrName(String),
}

/// A validated CreateOrder request before its customer is looked up: the
/// defaults it left empty are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub client_request_id: String,
    pub customer: CustomerRef,
    pub lines: Vec<NewLine>,
    pub currency: Option<String>,
    pub requested_delivery_date: NaiveDate,
    pub incoterm: Option<String>,
    pub payment_terms: Option<String>,
    pub export: bool,
    pub total_minor: i64,
}

impl OrderRequest {
    /// The order for `customer`: its name and id, a copy of its rules, and
    /// its currency, incoterm and payment terms where the request left them
    /// empty (the customer's passed the same checks when it was stored).
    pub fn for_customer(self, customer: &Customer) -> NewOrder {
        NewOrder {
            client_request_id: self.client_request_id,
            customer: customer.name.clone(),
            customer_id: customer.customer_id.clone(),
            customer_rules: crate::customers::rules(customer),
            lines: self.lines,
            currency: self.currency.unwrap_or_else(|| customer.currency.clone()),
            requested_delivery_date: self.requested_delivery_date,
            incoterm: self.incoterm.unwrap_or_else(|| customer.incoterm.clone()),
            payment_terms: self
                .payment_terms
                .unwrap_or_else(|| customer.payment_terms.clone()),
            export: self.export,
            total_minor: self.total_minor,
        }
    }
}

/// A CreateOrder request with its customer found: what the store writes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub client_request_id: String,
    /// The customer master's name of the customer.
    pub customer: String,
    pub customer_id: String,
    /// The customer's rules as they stand now, kept with the order.
    pub customer_rules: CustomerRules,
    pub lines: Vec<NewLine>,
    pub currency: String,
    pub requested_delivery_date: NaiveDate,
    pub incoterm: String,
    pub payment_terms: String,
    pub export: bool,
    pub total_minor: i64,
}

/// `customer_id` when given (its format checked), else the `customer`
/// text; neither is an invalid `customer_id`.
fn customer_ref(request: &CreateOrderRequest) -> Result<CustomerRef, FieldError> {
    if !request.customer_id.is_empty() {
        let id = crate::customers::validate::customer_id("customer_id", &request.customer_id)?;
        return Ok(CustomerRef::Id(id));
    }
    if request.customer.trim().is_empty() {
        return Err(FieldError::new(
            "customer_id",
            "must not be empty: name the customer by its customer_id (or its name in \
             `customer`; see ListCustomers)",
        ));
    }
    let text = text("customer", &request.customer, MAX_CUSTOMER_CHARS)?;
    Ok(CustomerRef::IdOrName(text))
}

/// `Some(value)` unless it is empty or blank (then the customer's default
/// applies).
fn given(value: &str) -> Option<&str> {
    Some(value).filter(|value| !value.trim().is_empty())
}

/// Checks the request id alone: it is looked up before the rest is
/// validated, so a retry still finds its order after the requested date
/// has passed.
pub fn client_request_id(id: &str) -> Result<&str, FieldError> {
    let field = "client_request_id";
    if id.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if id.chars().count() > MAX_REQUEST_ID_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_REQUEST_ID_CHARS} characters"),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if !id.chars().all(allowed) {
        return Err(FieldError::new(
            field,
            "may contain only letters, digits and . _ : -",
        ));
    }
    Ok(id)
}

/// Validates every field the request decides; `today` is the first
/// acceptable delivery date. Currency, incoterm and payment terms left
/// empty are the customer's, so only given ones are checked here.
pub fn new_order(
    request: &CreateOrderRequest,
    today: NaiveDate,
) -> Result<OrderRequest, FieldError> {
    let client_request_id = client_request_id(&request.client_request_id)?.to_owned();
    let customer = customer_ref(request)?;

    let (lines, total_minor) = order_lines(&request.lines, MAX_LINES)?;

    let currency = given(&request.currency).map(currency).transpose()?;
    let requested_delivery_date = delivery_date(&request.requested_delivery_date, today)?;
    let incoterm = given(&request.incoterm).map(incoterm).transpose()?;
    let payment_terms = given(&request.payment_terms)
        .map(|terms| text("payment_terms", terms, MAX_PAYMENT_TERMS_CHARS))
        .transpose()?;

    Ok(OrderRequest {
        client_request_id,
        customer,
        lines,
        currency,
        requested_delivery_date,
        incoterm,
        payment_terms,
        export: request.export,
        total_minor,
    })
}

/// The lines of an order (CreateOrder, AmendOrder): 1 to `max_lines`, each
/// with a product, a spec of bounded length, a quantity from 1 to
/// [`MAX_QUANTITY`](gendan_grpc::validate::MAX_QUANTITY) and a
/// price not below 0; returns them trimmed with the order total, summed
/// with checked arithmetic.
pub fn order_lines(
    lines: &[OrderLine],
    max_lines: usize,
) -> Result<(Vec<NewLine>, i64), FieldError> {
    if lines.is_empty() {
        return Err(FieldError::new("lines", "an order needs at least one line"));
    }
    if lines.len() > max_lines {
        return Err(FieldError::new(
            "lines",
            format!("at most {max_lines} lines per order"),
        ));
    }
    let mut validated = Vec::with_capacity(lines.len());
    let mut total_minor: i64 = 0;
    for (index, line) in lines.iter().enumerate() {
        let product = text(
            &format!("lines[{index}].product"),
            &line.product,
            MAX_PRODUCT_CHARS,
        )?;
        if line.spec.chars().count() > MAX_SPEC_CHARS {
            return Err(FieldError::new(
                format!("lines[{index}].spec"),
                format!("must be at most {MAX_SPEC_CHARS} characters"),
            ));
        }
        gendan_grpc::validate::quantity(line.quantity, &format!("lines[{index}].quantity"))?;
        if line.unit_price_minor < 0 {
            return Err(FieldError::new(
                format!("lines[{index}].unit_price_minor"),
                "must not be negative",
            ));
        }
        let line_total = line_total(line.quantity, line.unit_price_minor).ok_or_else(|| {
            FieldError::new(
                format!("lines[{index}].unit_price_minor"),
                "quantity × unit price is too large",
            )
        })?;
        total_minor = total_minor.checked_add(line_total).ok_or_else(|| {
            FieldError::new(
                format!("lines[{index}].unit_price_minor"),
                "the order total is too large",
            )
        })?;
        validated.push(NewLine {
            product,
            spec: line.spec.trim().to_owned(),
            quantity: line.quantity,
            unit_price_minor: line.unit_price_minor,
        });
    }
    Ok((validated, total_minor))
}

/// A validated AcceptOrder request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub order_id: Uuid,
    pub accepted_by: String,
    /// Trimmed; may be empty.
    pub note: String,
}

/// An order id as the API takes it: a UUID.
pub fn order_id(text: &str) -> Result<Uuid, FieldError> {
    if text.is_empty() {
        return Err(FieldError::new("order_id", "must not be empty"));
    }
    Uuid::parse_str(text)
        .map_err(|_| FieldError::new("order_id", format!("{text:?} is not an order id (a UUID)")))
}

/// Validates every field of an AcceptOrder request.
pub fn acceptance(request: &AcceptOrderRequest) -> Result<Acceptance, FieldError> {
    let order_id = order_id(&request.order_id)?;
    let accepted_by = text("accepted_by", &request.accepted_by, MAX_ACCEPTED_BY_CHARS)?;
    let note = request.note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(FieldError::new(
            "note",
            format!("must be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(Acceptance {
        order_id,
        accepted_by,
        note: note.to_owned(),
    })
}

/// `quantity × unit price`, or `None` when it does not fit in `i64`.
pub fn line_total(quantity: u32, unit_price_minor: i64) -> Option<i64> {
    i64::from(quantity).checked_mul(unit_price_minor)
}

/// A required free-text field: trimmed, non-blank, at most `max` characters.
pub(crate) fn text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

pub(crate) fn currency(code: &str) -> Result<String, FieldError> {
    if ISO_4217.contains(&code) {
        return Ok(code.to_owned());
    }
    let problem = if ISO_4217.contains(&code.to_ascii_uppercase().as_str()) {
        format!(
            "{code:?} must be upper case ({})",
            code.to_ascii_uppercase()
        )
    } else {
        format!("{code:?} is not an ISO 4217 currency code (e.g. USD, EUR, CNY)")
    };
    Err(FieldError::new("currency", problem))
}

/// A `requested_delivery_date`: YYYY-MM-DD, not before `today`.
pub(crate) fn delivery_date(text: &str, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let field = "requested_delivery_date";
    let date = gendan_proto::date_from_str(text)
        .ok_or_else(|| FieldError::new(field, format!("{text:?} is not a YYYY-MM-DD date")))?;
    if date < today {
        return Err(FieldError::new(
            field,
            format!("{date} is in the past (today is {today})"),
        ));
    }
    Ok(date)
}

pub(crate) fn incoterm(code: &str) -> Result<String, FieldError> {
    if INCOTERMS_2020.contains(&code) {
        return Ok(code.to_owned());
    }
    Err(FieldError::new(
        "incoterm",
        format!(
            "{code:?} is not an Incoterms 2020 code ({})",
            INCOTERMS_2020.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
    }

    #[test]
    fn acceptance_checks_every_field() {
        let valid = AcceptOrderRequest {
            order_id: Uuid::now_v7().to_string(),
            accepted_by: "  J. Smith (Acme QA) ".to_owned(),
            note: " all 1000 pcs received ".to_owned(),
        };
        let accepted = acceptance(&valid).expect("valid");
        assert_eq!(accepted.accepted_by, "J. Smith (Acme QA)");
        assert_eq!(accepted.note, "all 1000 pcs received");

        let cases: Vec<(&str, AcceptOrderRequest)> = vec![
            (
                "order_id",
                AcceptOrderRequest {
                    order_id: String::new(),
                    ..valid.clone()
                },
            ),
            (
                "order_id",
                AcceptOrderRequest {
                    order_id: "PO-1".to_owned(),
                    ..valid.clone()
                },
            ),
            (
                "accepted_by",
                AcceptOrderRequest {
                    accepted_by: " ".to_owned(),
                    ..valid.clone()
                },
            ),
            (
                "accepted_by",
                AcceptOrderRequest {
                    accepted_by: "x".repeat(201),
                    ..valid.clone()
                },
            ),
            (
                "note",
                AcceptOrderRequest {
                    note: "x".repeat(2001),
                    ..valid.clone()
                },
            ),
        ];
        for (field, request) in cases {
            assert_eq!(acceptance(&request).unwrap_err().field, field);
        }
    }

    fn valid() -> CreateOrderRequest {
        CreateOrderRequest {
            client_request_id: "erp-42:rev.1_a".to_owned(),
            customer: "Acme Trading Ltd".to_owned(),
            lines: vec![
                OrderLine {
                    product: "BRKT-100".to_owned(),
                    spec: "zinc plated".to_owned(),
                    quantity: 1000,
                    unit_price_minor: 125,
                },
                OrderLine {
                    product: "BRKT-200".to_owned(),
                    spec: String::new(),
                    quantity: 10,
                    unit_price_minor: 0,
                },
            ],
            currency: "USD".to_owned(),
            requested_delivery_date: "2026-12-20".to_owned(),
            incoterm: "FOB".to_owned(),
            payment_terms: "30% T/T deposit, 70% against B/L copy".to_owned(),
            export: true,
            customer_id: String::new(),
        }
    }

    /// The field named by the error for `request`.
    fn failing_field(request: &CreateOrderRequest) -> String {
        new_order(request, today())
            .expect_err("request should be invalid")
            .field
    }

    #[test]
    fn a_valid_request_becomes_a_new_order() {
        let order = new_order(&valid(), today()).unwrap();
        assert_eq!(order.total_minor, 125_000);
        assert_eq!(order.lines.len(), 2);
        assert_eq!(order.requested_delivery_date.to_string(), "2026-12-20");
    }

    #[test]
    fn client_request_id_is_checked() {
        for bad in ["", "has space", "slash/no", "é", &"x".repeat(129)] {
            let mut request = valid();
            request.client_request_id = bad.to_owned();
            assert_eq!(failing_field(&request), "client_request_id", "{bad:?}");
        }
        let mut request = valid();
        request.client_request_id = "A".repeat(128);
        assert!(new_order(&request, today()).is_ok());
    }

    #[test]
    fn customer_is_checked() {
        let mut request = valid();
        request.customer = "c".repeat(201);
        assert_eq!(failing_field(&request), "customer");
        // Neither an id nor a customer: the id is what is missing.
        for blank in ["", "   "] {
            let mut request = valid();
            request.customer = blank.to_owned();
            assert_eq!(failing_field(&request), "customer_id", "{blank:?}");
        }
        for bad in ["has space", &"X".repeat(65), "a/b"] {
            let mut request = valid();
            request.customer_id = bad.to_owned();
            assert_eq!(failing_field(&request), "customer_id", "{bad:?}");
        }
        let mut request = valid();
        request.customer = "  Acme Trading Ltd ".to_owned();
        assert_eq!(
            new_order(&request, today()).unwrap().customer,
            CustomerRef::IdOrName("Acme Trading Ltd".to_owned())
        );
        // An id wins over the text.
        request.customer_id = "ACME".to_owned();
        assert_eq!(
            new_order(&request, today()).unwrap().customer,
            CustomerRef::Id("ACME".to_owned())
        );
    }

    #[test]
    fn defaults_left_empty_are_the_customers_and_given_ones_are_kept() {
        let mut request = valid();
        request.currency = String::new();
        request.incoterm = " ".to_owned();
        request.payment_terms = String::new();
        let checked = new_order(&request, today()).unwrap();
        assert_eq!(
            (&checked.currency, &checked.incoterm, &checked.payment_terms),
            (&None, &None, &None)
        );
        let customer = Customer {
            customer_id: "ACME".to_owned(),
            name: "Acme Trading Ltd".to_owned(),
            currency: "EUR".to_owned(),
            incoterm: "CIF".to_owned(),
            payment_terms: "NET30".to_owned(),
            major_aql: Some(1.0),
            dunning_reminder_days: vec![5, 20],
            ..Default::default()
        };
        let order = checked.for_customer(&customer);
        assert_eq!(
            (
                order.currency.as_str(),
                order.incoterm.as_str(),
                order.payment_terms.as_str()
            ),
            ("EUR", "CIF", "NET30")
        );
        assert_eq!(order.customer, "Acme Trading Ltd");
        assert_eq!(order.customer_id, "ACME");
        assert_eq!(order.customer_rules.major_aql, Some(1.0));
        assert_eq!(order.customer_rules.dunning_reminder_days, [5, 20]);

        let kept = new_order(&valid(), today())
            .unwrap()
            .for_customer(&customer);
        assert_eq!(
            (
                kept.currency.as_str(),
                kept.incoterm.as_str(),
                kept.payment_terms.as_str()
            ),
            ("USD", "FOB", "30% T/T deposit, 70% against B/L copy")
        );
    }

    #[test]
    fn lines_are_checked() {
        let mut request = valid();
        request.lines.clear();
        assert_eq!(failing_field(&request), "lines");

        let mut request = valid();
        request.lines = vec![request.lines[0].clone(); 501];
        assert_eq!(failing_field(&request), "lines");

        let mut request = valid();
        request.lines[1].product = " ".to_owned();
        assert_eq!(failing_field(&request), "lines[1].product");

        let mut request = valid();
        request.lines[1].spec = "s".repeat(2001);
        assert_eq!(failing_field(&request), "lines[1].spec");

        let mut request = valid();
        request.lines[1].quantity = 0;
        assert_eq!(failing_field(&request), "lines[1].quantity");

        // A client's -1 sent as u32 is refused, not stored and planned.
        let mut request = valid();
        request.lines[1].quantity = u32::MAX;
        assert_eq!(failing_field(&request), "lines[1].quantity");

        let mut request = valid();
        request.lines[0].unit_price_minor = -1;
        assert_eq!(failing_field(&request), "lines[0].unit_price_minor");
    }

    #[test]
    fn money_overflow_is_refused() {
        let mut request = valid();
        request.lines[0].unit_price_minor = i64::MAX;
        let err = new_order(&request, today()).unwrap_err();
        assert_eq!(err.field, "lines[0].unit_price_minor");
        assert!(err.problem.contains("too large"));

        // Each line fits; their sum does not.
        let mut request = valid();
        request.lines[0].quantity = 1;
        request.lines[0].unit_price_minor = i64::MAX;
        request.lines[1].quantity = 1;
        request.lines[1].unit_price_minor = 1;
        let err = new_order(&request, today()).unwrap_err();
        assert_eq!(err.field, "lines[1].unit_price_minor");
        assert!(err.problem.contains("total"));
    }

    #[test]
    fn currency_is_checked() {
        for bad in ["usd", "US", "USDD", "XYZ", "XAU"] {
            let mut request = valid();
            request.currency = bad.to_owned();
            assert_eq!(failing_field(&request), "currency", "{bad:?}");
        }
        for good in ["USD", "CNY", "EUR", "JPY"] {
            let mut request = valid();
            request.currency = good.to_owned();
            assert!(new_order(&request, today()).is_ok(), "{good}");
        }
    }

    #[test]
    fn requested_delivery_date_is_checked() {
        for bad in ["", "2026-13-01", "20/12/2026", "2026-02-30", "2026-11-19"] {
            let mut request = valid();
            request.requested_delivery_date = bad.to_owned();
            assert_eq!(
                failing_field(&request),
                "requested_delivery_date",
                "{bad:?}"
            );
        }
        let mut request = valid();
        request.requested_delivery_date = "2026-11-20".to_owned();
        assert!(
            new_order(&request, today()).is_ok(),
            "today is not the past"
        );
    }

    #[test]
    fn incoterm_is_checked() {
        for bad in ["fob", "DDU", "DAT", "CIF "] {
            let mut request = valid();
            request.incoterm = bad.to_owned();
            assert_eq!(failing_field(&request), "incoterm", "{bad:?}");
        }
        for good in INCOTERMS_2020 {
            let mut request = valid();
            request.incoterm = good.to_owned();
            assert!(new_order(&request, today()).is_ok(), "{good}");
        }
    }

    #[test]
    fn payment_terms_are_checked() {
        let mut request = valid();
        request.payment_terms = "p".repeat(201);
        assert_eq!(failing_field(&request), "payment_terms");
    }

    #[test]
    fn the_error_message_names_the_field() {
        let mut request = valid();
        request.lines[1].quantity = 0;
        let message = new_order(&request, today()).unwrap_err().to_string();
        assert!(message.contains("lines[1].quantity"), "{message}");
    }

    proptest! {
        /// The total is the exact sum of quantity × price whenever that sum
        /// fits in i64, and the order is refused otherwise.
        #[test]
        fn totals_are_exact_or_refused(
            items in prop::collection::vec(
                prop_oneof![
                    (1u32..10_000, 0i64..10_000_000),
                    (1u32..=gendan_grpc::validate::MAX_QUANTITY, 0i64..=i64::MAX / 1000),
                ],
                1..20,
            )
        ) {
            let mut request = valid();
            request.lines = items
                .iter()
                .map(|&(quantity, unit_price_minor)| OrderLine {
                    product: "P".to_owned(),
                    spec: String::new(),
                    quantity,
                    unit_price_minor,
                })
                .collect();
            let exact: i128 = items
                .iter()
                .map(|&(q, p)| i128::from(q) * i128::from(p))
                .sum();
            match new_order(&request, today()) {
                Ok(order) => prop_assert_eq!(i128::from(order.total_minor), exact),
                Err(err) => {
                    // Line totals are never negative, so the running sum
                    // overflows exactly when the final sum would.
                    prop_assert!(exact > i128::from(i64::MAX));
                    prop_assert!(err.field.ends_with("unit_price_minor"));
                }
            }
        }
    }
}
