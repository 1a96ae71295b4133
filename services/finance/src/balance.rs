//! What the customer and finance owe each other on one receivable: pure
//! arithmetic, plus [`load`], the one query that reads its inputs.
//!
//! The customer owes the order total less the credit notes issued for
//! claims, and nothing once the receivable is cancelled (the refund policy:
//! everything received goes back). The total is the current revision's: an
//! amended order's credit note is already left out of it, so it is not
//! taken off a second time (it only settles invoices issued for more, see
//! [`crate::amendments`]). What they paid, less the refunds paid back, is set
//! against that: whatever is short is outstanding, whatever is over is a
//! refund due. `RecordPayment` (and its overpayment check),
//! `CancelReceivable`, `RecordRefund`, `IssueCreditNote`,
//! `ReferToCollection`, [`settle`](crate::receivables::settle) (paid in
//! full) and `GetReceivable` all read these figures from a [`Balance`], so a
//! refund due after a credit and one after a cancellation are the same
//! figure, and no two paths can disagree about what is owed.

use sqlx::PgConnection;

use crate::receivables::{Receivable, STATUS_CANCELLED};

/// The money of one receivable, in its currency's minor units.
///
/// Amounts are bounded by the order total (payments by what is
/// outstanding, credits by what is not yet credited, refunds by what is
/// due), so the arithmetic saturates instead of checking: a saturated
/// figure would mean a hand-edited database, not a customer's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub total_minor: i64,
    /// Sum of the credit notes issued for claims (not for amendments).
    pub credited_minor: i64,
    /// Sum of the payments received.
    pub paid_minor: i64,
    /// Sum of the refunds paid out.
    pub refunded_minor: i64,
    pub cancelled: bool,
}

impl Balance {
    /// What the customer owes for the order now.
    pub fn owed_minor(&self) -> i64 {
        if self.cancelled {
            return 0;
        }
        self.total_minor.saturating_sub(self.credited_minor).max(0)
    }

    /// Money received and kept: payments less refunds.
    pub fn kept_minor(&self) -> i64 {
        self.paid_minor.saturating_sub(self.refunded_minor)
    }

    /// Still owed by the customer.
    pub fn outstanding_minor(&self) -> i64 {
        self.owed_minor().saturating_sub(self.kept_minor()).max(0)
    }

    /// Owed to the customer: what they paid beyond what they owe.
    pub fn refund_due_minor(&self) -> i64 {
        self.kept_minor().saturating_sub(self.owed_minor()).max(0)
    }

    /// What a further credit note may credit: the part of the total not
    /// credited yet. Crediting more would make the customer owe less than
    /// nothing, which no claim on the order's goods can justify.
    pub fn creditable_minor(&self) -> i64 {
        self.total_minor.saturating_sub(self.credited_minor).max(0)
    }

    /// Everything owed is paid or credited, on a receivable that stands.
    pub fn settled(&self) -> bool {
        !self.cancelled && self.outstanding_minor() == 0
    }

    /// This balance after a credit note of `amount_minor`.
    pub fn after_credit(self, amount_minor: i64) -> Balance {
        Balance {
            credited_minor: self.credited_minor.saturating_add(amount_minor),
            ..self
        }
    }

    /// This balance once the receivable is cancelled.
    pub fn after_cancellation(self) -> Balance {
        Balance {
            cancelled: true,
            ..self
        }
    }
}

/// The balance of `receivable` as stored now (call under the order lock so
/// it cannot move before the caller acts on it).
pub async fn load(conn: &mut PgConnection, receivable: &Receivable) -> sqlx::Result<Balance> {
    // sum(bigint) is numeric in PostgreSQL: each sum is cast back.
    let (paid_minor, credited_minor, refunded_minor): (i64, i64, i64) = sqlx::query_as(
        "SELECT \
           (SELECT COALESCE(sum(amount_minor), 0) FROM payments WHERE order_id = $1)::bigint, \
           (SELECT COALESCE(sum(amount_minor), 0) FROM credit_notes \
             WHERE order_id = $1 AND amendment_revision IS NULL)::bigint, \
           (SELECT COALESCE(sum(amount_minor), 0) FROM refunds WHERE order_id = $1)::bigint",
    )
    .bind(&receivable.order_id)
    .fetch_one(conn)
    .await?;
    Ok(Balance {
        total_minor: receivable.total_minor,
        credited_minor,
        paid_minor,
        refunded_minor,
        cancelled: receivable.status == STATUS_CANCELLED,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn balance(total: i64, credited: i64, paid: i64, refunded: i64) -> Balance {
        Balance {
            total_minor: total,
            credited_minor: credited,
            paid_minor: paid,
            refunded_minor: refunded,
            cancelled: false,
        }
    }

    #[test]
    fn a_credit_lowers_what_is_owed_and_turns_an_overpayment_into_a_refund() {
        // 30% deposit of 1000 paid, 200 credited: 500 still owed.
        let after_deposit = balance(1_000, 0, 300, 0).after_credit(200);
        assert_eq!(after_deposit.outstanding_minor(), 500);
        assert_eq!(after_deposit.refund_due_minor(), 0);
        // 800 credited on 300 paid: 100 goes back to the customer.
        let over = balance(1_000, 0, 300, 0).after_credit(800);
        assert_eq!(
            (over.outstanding_minor(), over.refund_due_minor()),
            (0, 100)
        );
        assert!(over.settled());
        // Once it is refunded, nobody owes anybody.
        let refunded = Balance {
            refunded_minor: 100,
            ..over
        };
        assert_eq!(
            (refunded.outstanding_minor(), refunded.refund_due_minor()),
            (0, 0)
        );
    }

    #[test]
    fn a_cancellation_owes_back_everything_kept() {
        let cancelled = balance(1_000, 200, 300, 0).after_cancellation();
        assert_eq!(cancelled.outstanding_minor(), 0);
        assert_eq!(cancelled.refund_due_minor(), 300);
        assert!(
            !cancelled.settled(),
            "a cancelled order is not paid in full"
        );
        // A refund paid for the credit before the order was cancelled is
        // not owed twice.
        let after_refund = balance(1_000, 900, 300, 200).after_cancellation();
        assert_eq!(after_refund.refund_due_minor(), 100);
    }

    #[test]
    fn only_the_uncredited_part_of_the_total_can_be_credited() {
        assert_eq!(balance(1_000, 0, 0, 0).creditable_minor(), 1_000);
        assert_eq!(balance(1_000, 600, 0, 0).creditable_minor(), 400);
        assert_eq!(balance(1_000, 1_000, 0, 0).creditable_minor(), 0);
    }

    proptest! {
        #[test]
        fn outstanding_and_refund_due_are_the_two_sides_of_one_difference(
            total in 1i64..1_000_000,
            credited_share in 0u32..=100,
            paid_share in 0u32..=100,
            refunded_share in 0u32..=100,
            cancelled in any::<bool>(),
        ) {
            let credited = total * i64::from(credited_share) / 100;
            let paid = total * i64::from(paid_share) / 100;
            let refunded = paid * i64::from(refunded_share) / 100;
            let b = Balance { cancelled, ..balance(total, credited, paid, refunded) };
            // Never both: either the customer owes or finance does.
            prop_assert!(b.outstanding_minor() == 0 || b.refund_due_minor() == 0);
            prop_assert!(b.outstanding_minor() >= 0 && b.refund_due_minor() >= 0);
            prop_assert_eq!(
                b.outstanding_minor() - b.refund_due_minor(),
                b.owed_minor() - b.kept_minor()
            );
            prop_assert_eq!(b.settled(), !cancelled && b.kept_minor() >= b.owed_minor());
            if cancelled {
                prop_assert_eq!(b.refund_due_minor(), b.kept_minor());
            }
        }
    }
}
