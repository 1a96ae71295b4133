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
