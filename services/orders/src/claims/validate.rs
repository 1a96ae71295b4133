//! Checks a `RaiseClaimRequest` in two steps, each failing with a
//! [`FieldError`] that names the field.
//!
//! [`request`] checks what the request says on its own (ids, kind, texts,
//! evidence) before any database work; [`against_lines`] then checks the
//! product and quantity against the order's lines and the units already
//! claimed, and prices the claim. The second step needs the order under its
//! row lock, so the quantity left to claim cannot change between the check
//! and the insert.

use gendan_grpc::FieldError;
use gendan_proto::v1::{ClaimKind, OrderLine, RaiseClaimRequest};
use uuid::Uuid;

use crate::validate::{self as order_validate, MAX_PRODUCT_CHARS, line_total, text};

pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_EVIDENCE_ITEMS: usize = 20;
pub const MAX_EVIDENCE_CHARS: usize = 500;
pub const MAX_RAISED_BY_CHARS: usize = 200;

/// A RaiseClaim request whose fields are valid on their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClaim {
    pub order_id: Uuid,
    pub client_request_id: String,
    pub kind: ClaimKind,
    pub product: String,
    pub quantity: u32,
    pub description: String,
    pub evidence: Vec<String>,
    pub raised_by: String,
}

/// Validates every field that needs no order to check.
pub fn request(request: &RaiseClaimRequest) -> Result<NewClaim, FieldError> {
    let order_id = order_validate::order_id(&request.order_id)?;
    let client_request_id =
        order_validate::client_request_id(&request.client_request_id)?.to_owned();
    let kind = kind(request.kind)?;
    let product = text("product", &request.product, MAX_PRODUCT_CHARS)?;
    if request.quantity == 0 {
        return Err(FieldError::new("quantity", "must be greater than 0"));
    }
    let description = text("description", &request.description, MAX_DESCRIPTION_CHARS)?;
    if request.evidence.len() > MAX_EVIDENCE_ITEMS {
        return Err(FieldError::new(
            "evidence",
            format!(
                "at most {MAX_EVIDENCE_ITEMS} items (got {})",
                request.evidence.len()
            ),
        ));
    }
    let evidence = request
        .evidence
        .iter()
        .enumerate()
        .map(|(index, item)| text(&format!("evidence[{index}]"), item, MAX_EVIDENCE_CHARS))
        .collect::<Result<Vec<_>, _>>()?;
    let raised_by = text("raised_by", &request.raised_by, MAX_RAISED_BY_CHARS)?;
    Ok(NewClaim {
        order_id,
        client_request_id,
        kind,
        product,
        quantity: request.quantity,
        description,
        evidence,
        raised_by,
    })
}

fn kind(number: i32) -> Result<ClaimKind, FieldError> {
    match ClaimKind::try_from(number) {
        Ok(ClaimKind::Unspecified) => Err(FieldError::new(
            "kind",
            "must be set (shortage, damage, quality or wrong item)",
        )),
        Ok(kind) => Ok(kind),
        Err(_) => Err(FieldError::new(
            "kind",
            format!("{number} is not a known claim kind"),
        )),
    }
}

/// Checks the claimed product and quantity against the order's `lines`,
/// given the units of that product `already_claimed` (open or resolved),
/// and returns the claim's value in minor units.
///
/// A product on several lines is one article: its quantities add up. The
/// claim is priced line by line in order, after the units claimed before
/// it: the units it covers are those of the lines they were sold on.
pub fn against_lines(
    claim: &NewClaim,
    lines: &[OrderLine],
    already_claimed: u64,
) -> Result<i64, FieldError> {
    let of_product: Vec<&OrderLine> = lines
        .iter()
        .filter(|line| line.product == claim.product)
        .collect();
    let Some(first) = of_product.first() else {
        return Err(FieldError::new(
            "product",
            format!(
                "{:?} is not a product of this order (it has {})",
                claim.product,
                products_of(lines)
            ),
        ));
    };
    let ordered: u64 = of_product.iter().map(|line| u64::from(line.quantity)).sum();
    let claimed = u64::from(claim.quantity);
    if claimed > ordered {
        return Err(FieldError::new(
            "quantity",
            format!(
                "must be at most {ordered}, the quantity of {} ordered",
                claim.product
            ),
        ));
    }
    let left = ordered.saturating_sub(already_claimed);
    if claimed > left {
        return Err(FieldError::new(
            "quantity",
            format!(
                "{already_claimed} of the {ordered} {} ordered are claimed already; at most \
                 {left} more can be claimed",
                claim.product
            ),
        ));
    }
    debug_assert!(!first.product.is_empty());
    value_of(&of_product, already_claimed, claimed)
        .ok_or_else(|| FieldError::new("quantity", "quantity × unit price is too large"))
}

/// The value of `claimed` units of a product sold on `lines`, counting the
/// `skip` units claimed before from the first line on.
fn value_of(lines: &[&OrderLine], mut skip: u64, mut claimed: u64) -> Option<i64> {
    let mut value: i64 = 0;
    for line in lines {
        let quantity = u64::from(line.quantity);
        let skipped = skip.min(quantity);
        skip -= skipped;
        let here = claimed.min(quantity - skipped);
        claimed -= here;
        let units = u32::try_from(here).ok()?;
        value = value.checked_add(line_total(units, line.unit_price_minor)?)?;
    }
    Some(value)
}

/// The order's products for an error message, each once, at most ten.
fn products_of(lines: &[OrderLine]) -> String {
    const SHOWN: usize = 10;
    let mut products: Vec<&str> = Vec::new();
    for line in lines {
        if !products.contains(&line.product.as_str()) {
            products.push(&line.product);
        }
    }
    let more = products.len().saturating_sub(SHOWN);
    let mut text = products
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> RaiseClaimRequest {
        RaiseClaimRequest {
            order_id: Uuid::now_v7().to_string(),
            client_request_id: "crm-7:claim.1".to_owned(),
            kind: ClaimKind::Damage as i32,
            product: " BRKT-100 ".to_owned(),
            quantity: 2,
            description: " two cartons crushed ".to_owned(),
            evidence: vec![" photo-1.jpg ".to_owned(), "survey SR-88".to_owned()],
            raised_by: "J. Smith (Acme QA)".to_owned(),
        }
    }

    fn lines() -> Vec<OrderLine> {
        vec![
            OrderLine {
                product: "BRKT-100".to_owned(),
                spec: String::new(),
                quantity: 10,
                unit_price_minor: 125,
            },
            OrderLine {
                product: "BRKT-200".to_owned(),
                spec: String::new(),
                quantity: 5,
                unit_price_minor: 5000,
            },
            OrderLine {
                product: "BRKT-100".to_owned(),
                spec: "second delivery".to_owned(),
                quantity: 4,
                unit_price_minor: 125,
            },
        ]
    }

    #[test]
    fn a_valid_request_is_trimmed() {
        let claim = request(&valid()).expect("valid");
        assert_eq!(claim.kind, ClaimKind::Damage);
        assert_eq!(claim.product, "BRKT-100");
        assert_eq!(claim.description, "two cartons crushed");
        assert_eq!(claim.evidence, vec!["photo-1.jpg", "survey SR-88"]);
        assert_eq!(against_lines(&claim, &lines(), 0), Ok(250));
    }

    #[test]
    fn every_field_is_named() {
        type Breaker = fn(&mut RaiseClaimRequest);
        let cases: Vec<(&str, Breaker)> = vec![
            ("order_id", |r| r.order_id = "PO-1".to_owned()),
            ("client_request_id", |r| r.client_request_id.clear()),
            ("client_request_id", |r| {
                r.client_request_id = "has space".to_owned()
            }),
            ("client_request_id", |r| {
                r.client_request_id = "x".repeat(129)
            }),
            ("kind", |r| r.kind = ClaimKind::Unspecified as i32),
            ("kind", |r| r.kind = 99),
            ("product", |r| r.product = "  ".to_owned()),
            ("quantity", |r| r.quantity = 0),
            ("description", |r| r.description.clear()),
            ("description", |r| r.description = "d".repeat(2001)),
            ("evidence", |r| r.evidence = vec!["p".to_owned(); 21]),
            ("evidence[1]", |r| r.evidence[1] = " ".to_owned()),
            ("evidence[0]", |r| r.evidence[0] = "e".repeat(501)),
            ("raised_by", |r| r.raised_by.clear()),
            ("raised_by", |r| r.raised_by = "r".repeat(201)),
        ];
        for (field, breaker) in cases {
            let mut bad = valid();
            breaker(&mut bad);
            assert_eq!(request(&bad).unwrap_err().field, field);
        }
        let mut limits = valid();
        limits.evidence = vec!["e".repeat(500); 20];
        limits.description = "d".repeat(2000);
        limits.client_request_id = "c".repeat(128);
        assert!(request(&limits).is_ok());
    }

    #[test]
    fn product_and_quantity_are_checked_against_the_lines() {
        let mut claim = request(&valid()).unwrap();
        claim.product = "BOLT-9".to_owned();
        let err = against_lines(&claim, &lines(), 0).unwrap_err();
        assert_eq!(err.field, "product");
        assert!(err.problem.contains("BRKT-100, BRKT-200"), "{err}");

        // BRKT-100 is on two lines: 14 units in all.
        let mut claim = request(&valid()).unwrap();
        claim.quantity = 14;
        assert_eq!(against_lines(&claim, &lines(), 0), Ok(14 * 125));
        claim.quantity = 15;
        let err = against_lines(&claim, &lines(), 0).unwrap_err();
        assert_eq!(err.field, "quantity");
        assert!(err.problem.contains("at most 14"), "{err}");

        // Claims so far count, open or resolved.
        claim.quantity = 3;
        assert_eq!(against_lines(&claim, &lines(), 11), Ok(375));
        let err = against_lines(&claim, &lines(), 12).unwrap_err();
        assert_eq!(err.field, "quantity");
        assert!(err.problem.contains("at most 2 more"), "{err}");
    }

    #[test]
    fn a_value_that_does_not_fit_is_refused() {
        let mut claim = request(&valid()).unwrap();
        claim.quantity = 3;
        let priced = vec![OrderLine {
            product: "BRKT-100".to_owned(),
            spec: String::new(),
            quantity: 3,
            unit_price_minor: i64::MAX / 2,
        }];
        assert_eq!(
            against_lines(&claim, &priced, 0).unwrap_err().field,
            "quantity"
        );
    }

    #[test]
    fn a_claim_is_priced_on_the_lines_its_units_were_sold_on() {
        let line = |quantity, price| OrderLine {
            product: "BRKT-100".to_owned(),
            spec: String::new(),
            quantity,
            unit_price_minor: price,
        };
        let zinc = line(1, 10_000);
        let coated = line(100, 1);
        let lines = [&zinc, &coated];
        // The first unit is the zinc one; the next ones are coated.
        assert_eq!(value_of(&lines, 0, 1), Some(10_000));
        assert_eq!(value_of(&lines, 0, 3), Some(10_002));
        assert_eq!(value_of(&lines, 1, 100), Some(100));
        assert_eq!(value_of(&lines, 0, 0), Some(0));
    }
}
