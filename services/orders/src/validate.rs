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
mod tests;
