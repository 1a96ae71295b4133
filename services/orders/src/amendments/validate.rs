//! Checks an `AmendOrderRequest` in steps, each failing with a
//! [`FieldError`] that names the field.
//!
//! [`ids`] checks the order id and the request id alone: they are looked up
//! before anything else, so a retry finds its amendment even when the rest
//! would no longer pass (the new date has passed since). [`request`] checks
//! the rest on its own: the lines by the rules CreateOrder uses
//! ([`crate::validate::order_lines`], at most [`MAX_LINES`]) and at most
//! one line per product, the date, the reason and who asked. [`changes`]
//! then compares the amendment with the order as it is, under its row
//! lock, and refuses an amendment that changes nothing.

use chrono::NaiveDate;
use gendan_grpc::FieldError;
use gendan_proto::v1::{AmendOrderRequest, OrderLine};
use uuid::Uuid;

use crate::validate::{self as order_validate, NewLine, delivery_date, order_lines, text};

/// Lines of an amended order (`AmendOrderRequest.lines`): as many as an
/// order may have.
pub const MAX_LINES: usize = order_validate::MAX_LINES;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_REQUESTED_BY_CHARS: usize = 200;

/// An AmendOrder request whose fields are valid on their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAmendment {
    pub order_id: Uuid,
    pub client_request_id: String,
    /// The order's lines after the amendment, complete, one per product.
    pub lines: Vec<NewLine>,
    /// The order total after the amendment.
    pub total_minor: i64,
    /// The new requested delivery date; `None`: unchanged.
    pub requested_delivery_date: Option<NaiveDate>,
    pub reason: String,
    pub requested_by: String,
}

/// The order id and the request id.
pub fn ids(request: &AmendOrderRequest) -> Result<(Uuid, String), FieldError> {
    let order_id = order_validate::order_id(&request.order_id)?;
    let client_request_id =
        order_validate::client_request_id(&request.client_request_id)?.to_owned();
    Ok((order_id, client_request_id))
}

/// Validates every field that needs no order to check; `today` is the
/// first acceptable delivery date.
pub fn request(request: &AmendOrderRequest, today: NaiveDate) -> Result<NewAmendment, FieldError> {
    let (order_id, client_request_id) = ids(request)?;
    let (lines, total_minor) = order_lines(&request.lines, MAX_LINES)?;
    one_line_per_product(&lines)?;
    let requested_delivery_date = if request.requested_delivery_date.is_empty() {
        None
    } else {
        Some(delivery_date(&request.requested_delivery_date, today)?)
    };
    let reason = text("reason", &request.reason, MAX_REASON_CHARS)?;
    let requested_by = text(
        "requested_by",
        &request.requested_by,
        MAX_REQUESTED_BY_CHARS,
    )?;
    Ok(NewAmendment {
        order_id,
        client_request_id,
        lines,
        total_minor,
        requested_delivery_date,
        reason,
        requested_by,
    })
}

/// A product on two lines of an amendment is refused at its second line.
fn one_line_per_product(lines: &[NewLine]) -> Result<(), FieldError> {
    for (index, line) in lines.iter().enumerate() {
        if let Some(first) = lines[..index]
            .iter()
            .position(|earlier| earlier.product == line.product)
        {
            return Err(FieldError::new(
                format!("lines[{index}].product"),
                format!(
                    "{:?} appears twice (lines[{first}] and lines[{index}]); an amended order \
                     has at most one line per product",
                    line.product
                ),
            ));
        }
    }
    Ok(())
}

/// The amendment's lines as the order will hold them.
pub fn order_lines_of(lines: &[NewLine]) -> Vec<OrderLine> {
    lines
        .iter()
        .map(|line| OrderLine {
            product: line.product.clone(),
            spec: line.spec.clone(),
            quantity: line.quantity,
            unit_price_minor: line.unit_price_minor,
        })
        .collect()
}

/// What the amendment changes on the order (`before`, its requested date
/// `date_before`), in words ([`super::changes::describe`]); refused on
/// `lines` when it changes nothing.
pub fn changes(
    before: &[OrderLine],
    after: &[OrderLine],
    date_before: NaiveDate,
    date_after: NaiveDate,
    currency: &str,
) -> Result<Vec<String>, FieldError> {
    let changes = super::changes::describe(before, after, date_before, date_after, currency);
    if changes.is_empty() {
        return Err(FieldError::new(
            "lines",
            "the amendment changes nothing: the lines and the requested delivery date are the \
             order's as they are",
        ));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 1, 10).unwrap()
    }

    fn valid() -> AmendOrderRequest {
        AmendOrderRequest {
            order_id: Uuid::now_v7().to_string(),
            client_request_id: "erp-42:amend.1".to_owned(),
            lines: vec![
                OrderLine {
                    product: " SHIRT-01 ".to_owned(),
                    spec: " navy ".to_owned(),
                    quantity: 120,
                    unit_price_minor: 1250,
                },
                OrderLine {
                    product: "TROUSER-02".to_owned(),
                    spec: String::new(),
                    quantity: 50,
                    unit_price_minor: 2000,
                },
            ],
            requested_delivery_date: "2027-03-15".to_owned(),
            reason: " PO rev B ".to_owned(),
            requested_by: "buyer@acme".to_owned(),
        }
    }

    #[test]
    fn a_valid_request_is_trimmed_and_totalled() {
        let amendment = request(&valid(), today()).expect("valid");
        assert_eq!(amendment.lines[0].product, "SHIRT-01");
        assert_eq!(amendment.lines[0].spec, "navy");
        assert_eq!(amendment.total_minor, 120 * 1250 + 50 * 2000);
        assert_eq!(
            amendment.requested_delivery_date,
            NaiveDate::from_ymd_opt(2027, 3, 15)
        );
        assert_eq!(amendment.reason, "PO rev B");

        let mut unchanged_date = valid();
        unchanged_date.requested_delivery_date.clear();
        let amendment = request(&unchanged_date, today()).expect("valid");
        assert_eq!(amendment.requested_delivery_date, None);
    }

    #[test]
    fn every_field_is_named() {
        type Breaker = fn(&mut AmendOrderRequest);
        let cases: Vec<(&str, Breaker)> = vec![
            ("order_id", |r| r.order_id = "PO-1".to_owned()),
            ("order_id", |r| r.order_id.clear()),
            ("client_request_id", |r| r.client_request_id.clear()),
            ("client_request_id", |r| {
                r.client_request_id = "has space".to_owned()
            }),
            ("client_request_id", |r| {
                r.client_request_id = "x".repeat(129)
            }),
            ("lines", |r| r.lines.clear()),
            ("lines", |r| r.lines = vec![r.lines[0].clone(); 501]),
            ("lines[1].product", |r| r.lines[1].product = " ".to_owned()),
            ("lines[1].product", |r| {
                r.lines[1].product = "SHIRT-01".to_owned()
            }),
            ("lines[0].spec", |r| r.lines[0].spec = "s".repeat(2001)),
            ("lines[1].quantity", |r| r.lines[1].quantity = 0),
            ("lines[0].unit_price_minor", |r| {
                r.lines[0].unit_price_minor = -1
            }),
            ("lines[0].unit_price_minor", |r| {
                r.lines[0].unit_price_minor = i64::MAX
            }),
            ("requested_delivery_date", |r| {
                r.requested_delivery_date = "2027-01-09".to_owned()
            }),
            ("requested_delivery_date", |r| {
                r.requested_delivery_date = "15/03/2027".to_owned()
            }),
            ("reason", |r| r.reason = "  ".to_owned()),
            ("reason", |r| r.reason = "r".repeat(501)),
            ("requested_by", |r| r.requested_by.clear()),
            ("requested_by", |r| r.requested_by = "b".repeat(201)),
        ];
        for (field, breaker) in cases {
            let mut bad = valid();
            breaker(&mut bad);
            assert_eq!(request(&bad, today()).unwrap_err().field, field, "{field}");
        }
        let mut limits = valid();
        limits.reason = "r".repeat(500);
        limits.requested_by = "b".repeat(200);
        limits.client_request_id = "c".repeat(128);
        limits.requested_delivery_date = "2027-01-10".to_owned();
        assert!(request(&limits, today()).is_ok());
    }

    #[test]
    fn a_duplicate_product_names_its_second_line() {
        let mut bad = valid();
        bad.lines[1].product = "SHIRT-01".to_owned();
        let err = request(&bad, today()).unwrap_err();
        assert!(err.problem.contains("appears twice"), "{err}");
        assert!(err.problem.contains("lines[0]"), "{err}");
    }

    #[test]
    fn an_amendment_that_changes_nothing_is_refused_on_lines() {
        let amendment = request(&valid(), today()).unwrap();
        let lines = order_lines_of(&amendment.lines);
        let day = today();
        let err = changes(&lines, &lines, day, day, "USD").unwrap_err();
        assert_eq!(err.field, "lines");
        assert!(err.problem.contains("changes nothing"), "{err}");
        let later = NaiveDate::from_ymd_opt(2027, 3, 15).unwrap();
        assert_eq!(
            changes(&lines, &lines, day, later, "USD").unwrap(),
            ["requested date 2027-01-10 → 2027-03-15"]
        );
    }
}
