//! Pure mappings from the events the ledger books to its entries (which
//! category, what amount in which currency, or a warning when nothing can
//! be costed), and the labour rates they read. See [`crate::costs`] for
//! the table of events.

use std::collections::HashMap;

use gendan_proto::v1::{
    CreditNoteIssued, FinalInspectionOpened, MaterialsOrdered, PurchaseOrderPlaced,
    ReworkCompleted, ShipmentBooked, WorkOrderCompleted,
};
use sqlx::PgConnection;

use super::{CREDIT_NOTE, EXPEDITE, Entry, FREIGHT, INSPECTION, LABOUR, MATERIAL, REWORK};
use crate::credit_notes::AMENDMENT_CLAIM_PREFIX;
use crate::validate;

fn amount(value: i64, currency: &str, what: &str) -> Result<(i64, String), String> {
    if value < 0 {
        return Err(format!("{what}: negative amount {value}"));
    }
    let currency = validate::currency(currency, "currency").map_err(|e| format!("{what}: {e}"))?;
    Ok((value, currency))
}

pub fn material(event: &PurchaseOrderPlaced) -> Result<Entry, String> {
    let what = format!("purchase order {}", event.purchase_order_id);
    Ok(Entry {
        category: MATERIAL,
        description: format!(
            "purchase order {} to {}: {} {}",
            event.purchase_order_id, event.supplier, event.quantity, event.material
        ),
        amount: Some(amount(event.amount_minor, &event.currency, &what)?),
        warning: None,
    })
}

/// The material an order took from stock (`MaterialsOrdered.stock_issued`),
/// one entry per issue at the offer price procurement valued it at: the
/// purchase orders cost only what was bought, and the budget counts the
/// whole requirement. An issue nobody offers (no currency) is a warning
/// entry; one that costs nothing with a currency (a free offer, a quantity
/// that rounds to 0) books no entry.
pub fn stock_issued(event: &MaterialsOrdered) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for issue in &event.stock_issued {
        let quantity = if issue.unit.trim().is_empty() {
            format!("{} {}", milli_text(issue.quantity_milli), issue.material)
        } else {
            format!(
                "{} {} {}",
                milli_text(issue.quantity_milli),
                issue.unit,
                issue.material
            )
        };
        if issue.amount_minor == 0 && issue.currency.trim().is_empty() {
            entries.push(Entry {
                category: MATERIAL,
                description: format!("stock issued: {quantity}"),
                amount: None,
                warning: Some(format!(
                    "stock issued: {quantity} without a supplier offer: not costed"
                )),
            });
            continue;
        }
        if issue.amount_minor == 0 {
            continue;
        }
        let what = format!("stock issue of {}", issue.material);
        entries.push(Entry {
            category: MATERIAL,
            description: format!("stock issued: {quantity} at the offer price"),
            amount: Some(amount(issue.amount_minor, &issue.currency, &what)?),
            warning: None,
        });
    }
    Ok(entries)
}

/// Thousandths as the decimal they are, without trailing zeros (120000 →
/// "120", 15300 → "15.3"), as procurement writes quantities.
fn milli_text(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let magnitude = milli.unsigned_abs();
    let (whole, fraction) = (magnitude / 1000, magnitude % 1000);
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{fraction:03}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// The freight of a booking; a later booking of the order (revision 2 on:
/// the first one missed its departure and the goods go again, often by a
/// faster lane) is expedite, so what the delay cost shows apart from the
/// freight that was planned.
pub fn freight(event: &ShipmentBooked) -> Result<Entry, String> {
    let (category, description) = if event.revision >= 2 {
        (
            EXPEDITE,
            format!(
                "expedited freight {} {} ({}, booking revision {})",
                event.carrier, event.mode, event.booking_reference, event.revision
            ),
        )
    } else {
        (
            FREIGHT,
            format!(
                "freight {} {} ({})",
                event.carrier, event.mode, event.booking_reference
            ),
        )
    };
    if event.freight_cost_minor == 0 && event.currency.trim().is_empty() {
        // A booking without a quote yet: visible on the ledger, not a cost.
        return Ok(Entry {
            category,
            description,
            amount: None,
            warning: Some("shipment booked without a freight cost".to_owned()),
        });
    }
    Ok(Entry {
        category,
        description,
        amount: Some(amount(
            event.freight_cost_minor,
            &event.currency,
            "shipment booking",
        )?),
        warning: None,
    })
}

/// One final inspection run: its sampled units at the inspection rate
/// (currency, minor units per unit), or a warning entry when no rate is
/// set.
pub fn inspection(event: &FinalInspectionOpened, rate: Option<&(String, i64)>) -> Entry {
    let units = event.sample_size;
    let description = format!(
        "final inspection {}: {units} sampled units",
        event.inspection_id
    );
    let (amount, warning) = match rate {
        None => (
            None,
            Some(format!(
                "no inspection rate: {units} sampled units not costed"
            )),
        ),
        Some((currency, per_unit)) => match per_unit.checked_mul(i64::from(units)) {
            Some(cost) if cost >= 0 => (Some((cost, currency.clone())), None),
            _ => (
                None,
                Some(format!(
                    "{units} sampled units at {per_unit} per unit cannot be costed"
                )),
            ),
        },
    };
    Entry {
        category: INSPECTION,
        description,
        amount,
        warning,
    }
}

/// A claim's credit note: what the order gave back. `None` for an
/// amendment's note, which follows a lower price rather than a cost.
pub fn credit_note(event: &CreditNoteIssued) -> Result<Option<Entry>, String> {
    if event.claim_id.starts_with(AMENDMENT_CLAIM_PREFIX) {
        return Ok(None);
    }
    let what = format!("credit note {}", event.credit_note_id);
    Ok(Some(Entry {
        category: CREDIT_NOTE,
        description: format!(
            "credit note {} for claim {}",
            event.credit_note_id, event.claim_id
        ),
        amount: Some(amount(event.amount_minor, &event.currency, &what)?),
        warning: None,
    }))
}

/// A labour rate: currency and minor units per hour.
pub type Rates = HashMap<String, (String, i64)>;

/// `hours × rate`, rounded half up to the minor unit. Hours are taken to
/// the thousandth (3.6 seconds) so the product is integer arithmetic.
pub fn labour_cost(hours: f64, rate_minor_per_hour: i64) -> Option<i64> {
    if !hours.is_finite() || hours < 0.0 || rate_minor_per_hour < 0 {
        return None;
    }
    let milli_hours = (hours * 1000.0).round();
    if milli_hours > 1e15 {
        return None;
    }
    let cost = (milli_hours as i128 * i128::from(rate_minor_per_hour) + 500) / 1000;
    i64::try_from(cost).ok()
}

pub fn labour(event: &WorkOrderCompleted, rates: &Rates) -> Vec<Entry> {
    hours_at_rates(
        LABOUR,
        &format!("work order {}", event.work_order_id),
        &event.hours_by_work_centre,
        rates,
    )
}

/// A rework's hours cost like labour, on their own line of the ledger: what
/// failed inspection cost the order shows apart from what making it did.
pub fn rework(event: &ReworkCompleted, rates: &Rates) -> Vec<Entry> {
    hours_at_rates(
        REWORK,
        &format!("rework work order {}", event.work_order_id),
        &event.hours_by_work_centre,
        rates,
    )
}

/// One entry per work centre (in code order): `hours × rate` under
/// `category`, or a warning when the centre has no rate.
fn hours_at_rates(
    category: &'static str,
    work_order: &str,
    hours_by_work_centre: &HashMap<String, f64>,
    rates: &Rates,
) -> Vec<Entry> {
    let mut centres: Vec<(&String, &f64)> = hours_by_work_centre.iter().collect();
    // Map order is random; line numbers must be stable across redeliveries.
    centres.sort_by(|a, b| a.0.cmp(b.0));
    centres
        .into_iter()
        .map(|(work_centre, hours)| {
            let description = format!("{category} {work_centre}: {hours} h on {work_order}");
            let (amount, warning) = match rates.get(work_centre) {
                None => (
                    None,
                    Some(format!(
                        "no labour rate for work centre {work_centre:?}: {hours} h not costed"
                    )),
                ),
                Some((currency, rate)) => match labour_cost(*hours, *rate) {
                    Some(cost) => (Some((cost, currency.clone())), None),
                    None => (
                        None,
                        Some(format!("{hours} h at {work_centre:?} cannot be costed")),
                    ),
                },
            };
            Entry {
                category,
                description,
                amount,
                warning,
            }
        })
        .collect()
}

pub async fn labour_rates(conn: &mut PgConnection) -> sqlx::Result<Rates> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT work_centre, currency, rate_minor_per_hour FROM labour_rates")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(centre, currency, rate)| (centre, (currency, rate)))
        .collect())
}

#[cfg(test)]
mod tests {
    use gendan_proto::v1::StockIssue;

    use super::*;
    use crate::costs::Booked;

    #[test]
    fn labour_is_hours_times_rate_rounded() {
        assert_eq!(labour_cost(12.5, 2_000), Some(25_000));
        assert_eq!(labour_cost(0.3333, 100), Some(33));
        assert_eq!(labour_cost(0.0005, 1_000), Some(1));
        assert_eq!(labour_cost(-1.0, 100), None);
        assert_eq!(labour_cost(f64::NAN, 100), None);
        assert_eq!(labour_cost(1e30, 100), None);
    }

    #[test]
    fn missing_rate_books_a_warning() {
        let event = WorkOrderCompleted {
            order_id: "o-1".into(),
            work_order_id: "wo-1".into(),
            hours_by_work_centre: [("SEW".to_owned(), 10.0), ("CUT".to_owned(), 4.0)]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let rates: Rates = [("CUT".to_owned(), ("USD".to_owned(), 1_500))]
            .into_iter()
            .collect();
        let entries = labour(&event, &rates);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].amount, Some((6_000, "USD".to_owned())));
        assert!(entries[1].amount.is_none());
        assert!(entries[1].warning.as_deref().unwrap().contains("SEW"));
    }

    #[test]
    fn rework_hours_are_costed_at_labour_rates_under_rework() {
        let event = ReworkCompleted {
            order_id: "o-1".into(),
            revision: 1,
            work_order_id: "wo-r1".into(),
            hours_by_work_centre: [("SEW".to_owned(), 4.0)].into_iter().collect(),
            ..Default::default()
        };
        let rates: Rates = [("SEW".to_owned(), ("USD".to_owned(), 2_000))]
            .into_iter()
            .collect();
        let entries = rework(&event, &rates);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].category, REWORK);
        assert_eq!(entries[0].amount, Some((8_000, "USD".to_owned())));
        assert!(
            entries[0].description.contains("wo-r1"),
            "{}",
            entries[0].description
        );
    }

    #[test]
    fn malformed_costs_are_refused() {
        let po = PurchaseOrderPlaced {
            order_id: "o-1".into(),
            amount_minor: -5,
            currency: "USD".into(),
            ..Default::default()
        };
        assert!(material(&po).unwrap_err().contains("negative"));
        let shipment = ShipmentBooked {
            freight_cost_minor: 100,
            currency: "usd".into(),
            ..Default::default()
        };
        assert!(freight(&shipment).unwrap_err().contains("currency"));
        let unquoted = ShipmentBooked::default();
        assert!(freight(&unquoted).unwrap().warning.is_some());
        let negative_credit = CreditNoteIssued {
            claim_id: "CLM-1".into(),
            amount_minor: -1,
            currency: "USD".into(),
            ..Default::default()
        };
        assert!(
            credit_note(&negative_credit)
                .unwrap_err()
                .contains("negative")
        );
    }

    fn booking(revision: u32) -> ShipmentBooked {
        ShipmentBooked {
            order_id: "o-1".into(),
            carrier: "Maersk".into(),
            mode: "sea".into(),
            booking_reference: format!("BK-{revision}"),
            freight_cost_minor: 120_000,
            currency: "USD".into(),
            revision,
            ..Default::default()
        }
    }

    #[test]
    fn a_re_booking_is_expedite() {
        for first in [0, 1] {
            assert_eq!(freight(&booking(first)).unwrap().category, FREIGHT);
        }
        let again = freight(&booking(2)).unwrap();
        assert_eq!(again.category, EXPEDITE);
        assert_eq!(again.amount, Some((120_000, "USD".to_owned())));
        assert!(again.description.contains("BK-2"), "{}", again.description);
    }

    #[test]
    fn an_inspection_costs_its_sampled_units() {
        let opened = FinalInspectionOpened {
            order_id: "o-1".into(),
            inspection_id: "insp-1".into(),
            lot_size: 1_200,
            sample_size: 80,
            ..Default::default()
        };
        let rate = ("USD".to_owned(), 150);
        let entry = inspection(&opened, Some(&rate));
        assert_eq!(entry.category, INSPECTION);
        assert_eq!(entry.amount, Some((12_000, "USD".to_owned())));
        assert!(entry.description.contains("insp-1"));
        let unpriced = inspection(&opened, None);
        assert!(unpriced.amount.is_none());
        assert!(
            unpriced
                .warning
                .as_deref()
                .unwrap()
                .contains("80 sampled units")
        );
        let absurd = ("USD".to_owned(), i64::MAX);
        assert!(inspection(&opened, Some(&absurd)).warning.is_some());
    }

    fn issue(material: &str, milli: i64, unit: &str, minor: i64, currency: &str) -> StockIssue {
        StockIssue {
            material: material.to_owned(),
            quantity_milli: milli,
            unit: unit.to_owned(),
            amount_minor: minor,
            currency: currency.to_owned(),
        }
    }

    #[test]
    fn stock_issued_is_material_at_the_offer_price() {
        let ordered = MaterialsOrdered {
            order_id: "o-1".into(),
            revision: 2,
            stock_issued: vec![
                issue("BUTTON", 4_000, "", 0, ""),
                issue("FABRIC", 120_000, "m", 120_000, "CNY"),
                // A free offer: nothing to book.
                issue("LABEL", 10_000, "pcs", 0, "USD"),
                issue("THREAD", 2_500, "cone", 498, "USD"),
            ],
            ..Default::default()
        };
        let entries = stock_issued(&ordered).unwrap();
        assert_eq!(
            entries,
            [
                Entry {
                    category: MATERIAL,
                    description: "stock issued: 4 BUTTON".to_owned(),
                    amount: None,
                    warning: Some(
                        "stock issued: 4 BUTTON without a supplier offer: not costed".to_owned()
                    ),
                },
                Entry {
                    category: MATERIAL,
                    description: "stock issued: 120 m FABRIC at the offer price".to_owned(),
                    amount: Some((120_000, "CNY".to_owned())),
                    warning: None,
                },
                Entry {
                    category: MATERIAL,
                    description: "stock issued: 2.5 cone THREAD at the offer price".to_owned(),
                    amount: Some((498, "USD".to_owned())),
                    warning: None,
                },
            ]
        );
        // What the ledger says of the costed line ("… (1200.00 CNY)").
        let booked = Booked::new(MATERIAL, &entries[1].description, 120_000, "CNY");
        assert_eq!(
            booked.what,
            "stock issued: 120 m FABRIC at the offer price (1200.00 CNY)"
        );

        assert_eq!(stock_issued(&MaterialsOrdered::default()), Ok(Vec::new()));
        let malformed = MaterialsOrdered {
            stock_issued: vec![issue("FABRIC", 1_000, "m", -5, "CNY")],
            ..Default::default()
        };
        assert!(stock_issued(&malformed).unwrap_err().contains("negative"));
        let no_currency = MaterialsOrdered {
            stock_issued: vec![issue("FABRIC", 1_000, "m", 500, "")],
            ..Default::default()
        };
        assert!(stock_issued(&no_currency).unwrap_err().contains("currency"));
    }

    #[test]
    fn quantities_are_written_to_the_thousandth_without_trailing_zeros() {
        assert_eq!(milli_text(120_000), "120");
        assert_eq!(milli_text(15_300), "15.3");
        assert_eq!(milli_text(1), "0.001");
        assert_eq!(milli_text(0), "0");
        assert_eq!(milli_text(-2_050), "-2.05");
    }

    #[test]
    fn claims_credit_notes_are_costs_and_amendments_are_not() {
        let issued = CreditNoteIssued {
            order_id: "o-1".into(),
            credit_note_id: "CN-2026-000007".into(),
            claim_id: "CLM-1".into(),
            amount_minor: 4_000,
            currency: "USD".into(),
            ..Default::default()
        };
        let entry = credit_note(&issued).unwrap().unwrap();
        assert_eq!(entry.category, CREDIT_NOTE);
        assert_eq!(entry.amount, Some((4_000, "USD".to_owned())));
        assert!(entry.description.contains("CN-2026-000007"));
        let amendment = CreditNoteIssued {
            claim_id: crate::credit_notes::amendment_claim(2),
            ..issued
        };
        assert_eq!(credit_note(&amendment), Ok(None));
    }
}
