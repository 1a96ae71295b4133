//! What an amendment does to each installment (pure): the stored schedule
//! priced at the new total ([`repriced`], by the terms' own arithmetic),
//! what an installment's invoices bill so far ([`billed_minor`]), and the
//! one decision between them ([`change`]): reprice an installment not
//! invoiced, or settle the difference on one invoiced with an additional
//! invoice (more) or a credit (less). Also the revision number rule
//! ([`revision`]) and the amounts as people read them ([`money`]).
//! [`crate::amendments`] stores what is decided here.

use crate::Result;
use crate::receivables::{INVOICE_VOID, InstallmentRow, Invoice};
use crate::terms::{self, Term};

/// What an amendment does to one installment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not invoiced yet: it takes its new amount, nothing is issued.
    Reprice,
    /// A deposit not invoiced yet (the old total priced it at nothing):
    /// invoiced now for its new amount, as when the receivable opened.
    FirstInvoice(i64),
    /// Invoiced for exactly its new amount.
    Unchanged,
    /// Invoiced for less than its new amount: an additional invoice of the
    /// same kind for the difference.
    AdditionalInvoice(i64),
    /// Invoiced for more than its new amount: credited by the revision's
    /// credit note.
    Credit(i64),
}

/// What becomes of an installment whose new amount is `new_minor` and
/// whose invoices bill `billed_minor` (`None`: not invoiced). `deposit`:
/// it is invoiced when the receivable opens, a milestone already passed.
pub fn change(new_minor: i64, billed_minor: Option<i64>, deposit: bool) -> Change {
    match billed_minor {
        None if deposit && new_minor > 0 => Change::FirstInvoice(new_minor),
        None => Change::Reprice,
        Some(billed) if new_minor > billed => Change::AdditionalInvoice(new_minor - billed),
        Some(billed) if new_minor < billed => Change::Credit(billed - new_minor),
        Some(_) => Change::Unchanged,
    }
}

/// The schedule's amounts at `total_minor`, installment by installment:
/// the stored shares, triggers and due days priced by the terms' own
/// arithmetic, so they sum to the total exactly. `None` for a schedule
/// that cannot be priced (a hand-edited row, a negative total).
pub fn repriced(schedule: &[InstallmentRow], total_minor: i64) -> Option<Vec<i64>> {
    let stored: Vec<Term> = schedule.iter().map(term).collect::<Option<_>>()?;
    let priced = terms::installments(&stored, total_minor)?;
    Some(priced.into_iter().map(|i| i.amount_minor).collect())
}

fn term(row: &InstallmentRow) -> Option<Term> {
    Some(Term {
        share_bp: u32::try_from(row.share_bp).ok()?,
        trigger: row.trigger()?,
        due_days: u32::try_from(row.due_days).ok()?,
    })
}

/// What installment `seq` is billed: its invoices (first and additional,
/// not void) less what earlier amendments credited on it (`credited`: per
/// installment). `None` while it has no invoice.
pub fn billed_minor(seq: i32, invoices: &[Invoice], credited: &[(i32, i64)]) -> Option<i64> {
    let mut of_installment = invoices
        .iter()
        .filter(|i| i.installment_seq == seq && i.status != INVOICE_VOID)
        .peekable();
    of_installment.peek()?;
    let invoiced: i64 = of_installment.map(|i| i.amount_minor).sum();
    let credit: i64 = credited
        .iter()
        .filter(|(credited_seq, _)| *credited_seq == seq)
        .map(|(_, amount)| *amount)
        .sum();
    Some(invoiced - credit)
}

/// The revision an `OpenReceivable` names: 0 (senders from before
/// revisions) counts as 1.
pub fn revision(sent: u32) -> Result<i32, String> {
    i32::try_from(sent.max(1)).map_err(|_| format!("revision {sent} is out of range"))
}

pub use gendan_proto::money;

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use proptest::prelude::*;

    use super::*;
    use crate::terms::Trigger;

    fn row(seq: i32, trigger: Trigger, share_bp: i32) -> InstallmentRow {
        InstallmentRow {
            seq,
            kind: trigger.kind().to_owned(),
            trigger: trigger.as_str().to_owned(),
            share_bp,
            amount_minor: 0,
            due_days: 0,
        }
    }

    /// 30% deposit, 70% against the B/L copy.
    fn schedule() -> Vec<InstallmentRow> {
        vec![
            row(0, Trigger::OnConfirmation, 3000),
            row(1, Trigger::AgainstBlCopy, 7000),
        ]
    }

    fn invoice(seq: i32, invoice_id: &str, amount_minor: i64) -> Invoice {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        Invoice {
            invoice_id: invoice_id.to_owned(),
            order_id: "o-1".to_owned(),
            installment_seq: seq,
            kind: "deposit".to_owned(),
            trigger: "on_confirmation".to_owned(),
            amount_minor,
            paid_minor: 0,
            credited_minor: 0,
            currency: "USD".to_owned(),
            issued_on: day,
            due_date: day,
            status: "open".to_owned(),
        }
    }

    #[test]
    fn the_difference_on_an_invoiced_installment_is_invoiced_or_credited() {
        assert_eq!(
            change(36_000, Some(30_000), true),
            Change::AdditionalInvoice(6_000)
        );
        assert_eq!(change(27_000, Some(36_000), true), Change::Credit(9_000));
        assert_eq!(change(36_000, Some(36_000), true), Change::Unchanged);
        // A balance invoiced at shipment is settled the same way.
        assert_eq!(
            change(84_000, Some(70_000), false),
            Change::AdditionalInvoice(14_000)
        );
        // Down to nothing: everything invoiced is credited.
        assert_eq!(change(0, Some(30_000), true), Change::Credit(30_000));
    }

    #[test]
    fn an_installment_not_invoiced_only_changes_its_amount() {
        assert_eq!(change(84_000, None, false), Change::Reprice);
        assert_eq!(change(0, None, false), Change::Reprice);
        assert_eq!(change(0, None, true), Change::Reprice);
        // A deposit is due at confirmation, which has passed: one the old
        // total priced at nothing is invoiced now.
        assert_eq!(change(5, None, true), Change::FirstInvoice(5));
    }

    #[test]
    fn the_schedule_keeps_its_shares_at_the_new_total() {
        assert_eq!(repriced(&schedule(), 120_000), Some(vec![36_000, 84_000]));
        assert_eq!(repriced(&schedule(), 90_000), Some(vec![27_000, 63_000]));
        // The terms' rounding: parts sum to the total to the minor unit.
        assert_eq!(repriced(&schedule(), 100_001), Some(vec![30_000, 70_001]));
        assert_eq!(repriced(&[], 100), None);
        let mut unknown = schedule();
        unknown[1].trigger = "whenever".to_owned();
        assert_eq!(repriced(&unknown, 100), None);
    }

    #[test]
    fn billed_counts_every_invoice_of_the_installment_less_earlier_credits() {
        let mut void = invoice(1, "INV-3", 70_000);
        void.status = INVOICE_VOID.to_owned();
        let invoices = vec![
            invoice(0, "INV-1", 30_000),
            invoice(0, "INV-2", 6_000),
            void,
        ];
        assert_eq!(billed_minor(0, &invoices, &[]), Some(36_000));
        assert_eq!(billed_minor(0, &invoices, &[(0, 9_000)]), Some(27_000));
        assert_eq!(billed_minor(0, &invoices, &[(1, 9_000)]), Some(36_000));
        assert_eq!(billed_minor(1, &invoices, &[]), None);
        assert_eq!(billed_minor(2, &invoices, &[]), None);
    }

    #[test]
    fn revisions_and_money() {
        assert_eq!(revision(0), Ok(1));
        assert_eq!(revision(1), Ok(1));
        assert_eq!(revision(3), Ok(3));
        assert!(revision(u32::MAX).is_err());
        assert_eq!(money(6_000, "USD"), "60.00 USD");
        assert_eq!(money(120_000, "EUR"), "1200.00 EUR");
        assert_eq!(money(-5, "USD"), "-0.05 USD");
        assert_eq!(money(1_200, "JPY"), "1200 JPY");
        assert_eq!(money(1_234, "KWD"), "1.234 KWD");
    }

    proptest! {
        /// Amendment after amendment, the deposit's invoices less its
        /// credits bill exactly its amount at the current total, the
        /// balance (not invoiced) is only repriced, and once the balance is
        /// invoiced everything billed is the last total.
        #[test]
        fn after_every_revision_the_invoiced_deposit_bills_its_new_amount(
            deposit_bp in 1i32..10_000,
            first in 1i64..100_000_000,
            totals in prop::collection::vec(1i64..100_000_000, 1..8),
        ) {
            let schedule = vec![
                row(0, Trigger::OnConfirmation, deposit_bp),
                row(1, Trigger::AgainstBlCopy, 10_000 - deposit_bp),
            ];
            let mut invoices = Vec::new();
            let mut credited: Vec<(i32, i64)> = Vec::new();
            let opening = repriced(&schedule, first).unwrap();
            if opening[0] > 0 {
                invoices.push(invoice(0, "INV-0", opening[0]));
            }
            let mut last = opening;
            for total in totals {
                let amounts = repriced(&schedule, total).unwrap();
                prop_assert_eq!(amounts.iter().sum::<i64>(), total);
                match change(amounts[0], billed_minor(0, &invoices, &credited), true) {
                    Change::AdditionalInvoice(more) | Change::FirstInvoice(more) => {
                        prop_assert!(more > 0);
                        invoices.push(invoice(0, "INV-n", more));
                    }
                    Change::Credit(less) => {
                        prop_assert!(less > 0);
                        credited.push((0, less));
                    }
                    Change::Unchanged => {}
                    Change::Reprice => prop_assert_eq!(amounts[0], 0),
                }
                prop_assert_eq!(billed_minor(0, &invoices, &credited).unwrap_or(0), amounts[0]);
                prop_assert_eq!(
                    change(amounts[1], billed_minor(1, &invoices, &credited), false),
                    Change::Reprice
                );
                last = amounts;
            }
            // Shipment: the balance is invoiced for its amount at the last
            // total, and the order bills that total net of the credits.
            invoices.push(invoice(1, "INV-b", last[1]));
            let invoiced: i64 = invoices.iter().map(|i| i.amount_minor).sum();
            let credit: i64 = credited.iter().map(|(_, c)| *c).sum();
            prop_assert_eq!(invoiced - credit, last.iter().sum::<i64>());
        }
    }
}
