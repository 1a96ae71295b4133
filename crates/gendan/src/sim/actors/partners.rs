//! The factory's business partners: the supplier confirming and delivering
//! purchase orders, the customer accepting goods (or, with the exception mix
//! on, claiming damage on the first order delivered, and amending the first
//! order confirmed) and answering decisions, and the bank paying invoices.

use anyhow::{Context, anyhow};
use chrono::Utc;
use gendan_proto::timestamp_from;
use gendan_proto::v1;
use tonic::Code;

use super::{World, bump, prefix, retry};

const WMS_GOODS_RECEIVED: &str = "gendan.ext.wms.inbound.goods_received";

/// The answer of the saga's `margin` decision that keeps the order at its
/// price (the others, `re_quote` and `reject`, would leave a simulated
/// order waiting for an amendment nobody sends, or end it).
const ACCEPT_AT_LOSS: &str = "accept_at_loss";

impl World {
    // ---- supplier ----

    /// The supplier confirms the PO for its expected date, then delivers
    /// the full quantity after the lead time. With the exception mix on, the
    /// first PO placed is confirmed (and delivered) twelve days late.
    pub(super) async fn supplier(&self, po: v1::PurchaseOrderPlaced) -> anyhow::Result<()> {
        self.pause_on(&po.order_id, 0.2).await;
        let procurement = self.clients.procurement.clone();
        let late = self.mix.supplier_late(&po.purchase_order_id);
        let eta = gendan_proto::date_from_str(&po.expected_date)
            .map(|date| {
                let slip = if late { 12 } else { 0 };
                gendan_proto::date_to_string(date + chrono::Days::new(slip))
            })
            .unwrap_or_else(|| po.expected_date.clone());
        if late {
            tracing::info!(purchase_order_id = %po.purchase_order_id, %eta, "simulated supplier confirms twelve days late");
        }
        let request = v1::ConfirmPurchaseOrderRequest {
            purchase_order_id: po.purchase_order_id.clone(),
            confirmed_eta: eta.clone(),
        };
        let confirmed = retry(&[Code::NotFound], || {
            let mut procurement = procurement.clone();
            let request = request.clone();
            async move { procurement.confirm_purchase_order(request).await }
        })
        .await;
        match confirmed {
            Ok(_) => {}
            // Cancelled meanwhile (the order was): nothing to supply.
            Err(status) if status.code() == Code::FailedPrecondition => {
                tracing::debug!(purchase_order_id = %po.purchase_order_id, %status, "not confirmed");
                return Ok(());
            }
            Err(status) => {
                return Err(anyhow::Error::from(status)).with_context(|| {
                    format!("confirming purchase order {}", po.purchase_order_id)
                });
            }
        }
        bump(&self.stats.purchase_orders_confirmed);

        let today = Utc::now().date_naive();
        let lead_days = gendan_proto::date_from_str(&eta)
            .map(|expected| (expected - today).num_days())
            .unwrap_or(1)
            .max(1);
        self.pause_on(&po.order_id, lead_days as f64).await;
        let received = v1::WmsGoodsReceived {
            purchase_order_id: po.purchase_order_id.clone(),
            material: po.material.clone(),
            quantity: po.quantity,
            lot: format!("LOT-{}-1", prefix(&po.purchase_order_id)),
            at: Some(timestamp_from(self.now(&po.order_id))),
        };
        self.publish(WMS_GOODS_RECEIVED, "wms:sim", &po.order_id, &received)
            .await?;
        bump(&self.stats.goods_received);
        Ok(())
    }

    // ---- customer ----

    /// The customer's receiving department accepts the goods a day after
    /// delivery. With the exception mix on, the first order delivered is
    /// claimed instead (`claim`) and not accepted here: orders
    /// accepts it once the claim is resolved.
    pub(super) async fn accept(&self, order_id: String) -> anyhow::Result<()> {
        // Decided before the wait, so the first delivery seen is the one
        // claimed, whichever reaction finishes its wait first.
        let claims = self.mix.claims_on_delivery(&order_id);
        self.pause_on(&order_id, 1.0).await;
        if claims {
            return self.claim(&order_id).await;
        }
        let customer = self.customer_of(&order_id).await?;
        let orders = self.clients.orders.clone();
        let request = v1::AcceptOrderRequest {
            order_id: order_id.clone(),
            accepted_by: format!("receiving dept, {customer}"),
            note: "goods received complete and in good order".to_owned(),
        };
        // The order reaches acceptance once the saga has seen the delivery.
        retry(&[Code::FailedPrecondition, Code::NotFound], || {
            let mut orders = orders.clone();
            let request = request.clone();
            async move { orders.accept_order(request).await }
        })
        .await
        .context("accepting the order")?;
        bump(&self.stats.accepted);
        Ok(())
    }

    /// The buyer sends a revised purchase order: 10% more of the first line
    /// (at least one unit). The request id is stable, so a retried call
    /// amends once.
    pub(super) async fn amend(&self, order_id: String) -> anyhow::Result<()> {
        self.pause_on(&order_id, 0.5).await;
        let orders = self.clients.orders.clone();
        let order = retry(&[Code::NotFound], || {
            let mut orders = orders.clone();
            let request = v1::GetOrderRequest {
                order_id: order_id.clone(),
            };
            async move { orders.get_order(request).await }
        })
        .await
        .with_context(|| format!("reading order {order_id}"))?;
        let mut lines = order.lines.clone();
        let first = lines
            .first_mut()
            .with_context(|| format!("order {order_id} has no lines to amend"))?;
        first.quantity += (first.quantity / 10).max(1);
        let request = v1::AmendOrderRequest {
            order_id: order_id.clone(),
            client_request_id: format!("sim-amend-{order_id}"),
            lines,
            requested_delivery_date: String::new(),
            reason: "customer PO revision B: more units of the first line".to_owned(),
            requested_by: format!("buyer, {}", order.customer),
        };
        // Amendments stop at shipping: an order already past it (a fast
        // machine) is simply not amended.
        match retry(&[Code::NotFound], || {
            let mut orders = orders.clone();
            let request = request.clone();
            async move { orders.amend_order(request).await }
        })
        .await
        {
            Ok(amendment) => {
                tracing::info!(%order_id, changes = %amendment.changes.join("; "), "simulated customer amended the order");
                Ok(())
            }
            Err(status) if status.code() == Code::FailedPrecondition => {
                tracing::info!(%order_id, %status, "simulated amendment refused");
                Ok(())
            }
            Err(status) => Err(anyhow::Error::from(status)).context("amending the order"),
        }
    }

    /// The receiving department claims that two units of the order's first
    /// line arrived damaged. The request id is stable, so a retried call
    /// raises one claim.
    async fn claim(&self, order_id: &str) -> anyhow::Result<()> {
        let orders = self.clients.orders.clone();
        let order = retry(&[Code::NotFound], || {
            let mut orders = orders.clone();
            let request = v1::GetOrderRequest {
                order_id: order_id.to_owned(),
            };
            async move { orders.get_order(request).await }
        })
        .await
        .with_context(|| format!("reading order {order_id}"))?;
        let line = order
            .lines
            .first()
            .with_context(|| format!("order {order_id} has no lines to claim on"))?;
        let quantity = line.quantity.min(2);
        let request = v1::RaiseClaimRequest {
            order_id: order_id.to_owned(),
            client_request_id: format!("sim-claim-{order_id}"),
            kind: v1::ClaimKind::Damage as i32,
            product: line.product.clone(),
            quantity,
            description: format!(
                "{quantity} units arrived damaged: cartons crushed in transit (simulated)"
            ),
            evidence: vec![format!("photo:DMG-{}-1.jpg", prefix(order_id))],
            raised_by: format!("receiving dept, {}", order.customer),
        };
        // The order reaches acceptance once the saga has seen the delivery.
        retry(&[Code::FailedPrecondition, Code::NotFound], || {
            let mut orders = orders.clone();
            let request = request.clone();
            async move { orders.raise_claim(request).await }
        })
        .await
        .context("raising a claim")?;
        tracing::info!(
            %order_id,
            product = %line.product,
            quantity,
            "simulated customer claimed damaged goods"
        );
        Ok(())
    }

    /// The people outside the saga answer what it asks: the customer the
    /// delivery date and a concession, the merchandiser a claim and an
    /// estimate below the customer's margin floor.
    pub(super) async fn decide(&self, decision: v1::Decision) -> anyhow::Result<()> {
        self.pause_on(&decision.order_id, 0.5).await;
        let customer = self.customer_of(&decision.order_id).await?;
        // The customer agrees to the factory's date, and accepts a lot that
        // failed inspection twice by concession rather than wait for a remake;
        // the merchandiser settles a damage claim, or cargo the carrier
        // lost, as the options say (a credit note by default), and keeps an
        // order whose estimate falls short of the margin floor at its price.
        let preferred = [
            gendan_saga::workflow::answers::ACCEPT_PROPOSED_DATE,
            gendan_saga::workflow::answers::CONCESSION,
            self.options.settle_claims_by,
            ACCEPT_AT_LOSS,
        ];
        let (operator, comment) = if decision.decision_kind() == v1::DecisionKind::ClaimResolution {
            (
                "merchandiser (sim)".to_owned(),
                format!(
                    "carrier photos confirm the damage; settled by {}",
                    self.options.settle_claims_by.replace('_', " ")
                ),
            )
        } else if decision.decision_kind() == v1::DecisionKind::CargoClaim {
            (
                "merchandiser (sim)".to_owned(),
                format!(
                    "the carrier confirms the loss; settled by {}",
                    self.options.settle_claims_by.replace('_', " ")
                ),
            )
        } else if decision.decision_kind() == v1::DecisionKind::Margin {
            (
                "merchandiser (sim)".to_owned(),
                "the price was agreed with the customer; accepted below the margin floor"
                    .to_owned(),
            )
        } else {
            (
                format!("customer:{customer}"),
                "agreed by e-mail".to_owned(),
            )
        };
        let answer = preferred
            .iter()
            .find(|answer| decision.options.iter().any(|o| o == *answer))
            .map(|answer| (*answer).to_owned())
            .or_else(|| decision.options.first().cloned())
            .unwrap_or_default();
        let request = v1::DecideRequest {
            order_id: decision.order_id.clone(),
            decision_id: decision.decision_id.clone(),
            answer,
            operator,
            comment,
        };
        let saga = self.clients.saga.clone();
        let decided = retry(&[], || {
            let mut saga = saga.clone();
            let request = request.clone();
            async move { saga.decide(request).await }
        })
        .await;
        match decided {
            Ok(_) => {
                bump(&self.stats.decisions_answered);
                Ok(())
            }
            // Answered meanwhile (an operator, the demo): fine.
            Err(status) if status.code() == Code::FailedPrecondition => Ok(()),
            Err(status) => Err(anyhow!(
                "answering decision {}: {status}",
                decision.decision_id
            )),
        }
    }

    // ---- bank ----

    /// The customer pays `payment` after `days`, dated on the business
    /// calendar.
    pub(super) async fn pay(&self, payment: Payment, days: f64) -> anyhow::Result<()> {
        self.pause_on(&payment.order_id, days).await;
        let finance = self.clients.finance.clone();
        let request = v1::RecordPaymentRequest {
            order_id: payment.order_id.clone(),
            amount_minor: payment.amount_minor,
            currency: payment.currency.clone(),
            received_on: gendan_proto::date_to_string(self.today()),
            reference: format!("TT-{}", payment.invoice_id),
            idempotency_key: format!("sim-{}", payment.invoice_id),
        };
        retry(&[Code::NotFound], || {
            let mut finance = finance.clone();
            let request = request.clone();
            async move { finance.record_payment(request).await }
        })
        .await
        .with_context(|| format!("paying invoice {}", payment.invoice_id))?;
        bump(&self.stats.payments);
        Ok(())
    }
}

/// What the bank pays: an invoice in full (a deposit after two days, a
/// balance after five), or what a reminder says is outstanding.
pub(super) struct Payment {
    order_id: String,
    invoice_id: String,
    amount_minor: i64,
    currency: String,
}

impl Payment {
    pub(super) fn of_invoice(invoice: &v1::InvoiceIssued) -> Self {
        Payment {
            order_id: invoice.order_id.clone(),
            invoice_id: invoice.invoice_id.clone(),
            amount_minor: invoice.amount_minor,
            currency: invoice.currency.clone(),
        }
    }

    pub(super) fn of_reminder(reminder: &v1::PaymentReminder) -> Self {
        Payment {
            order_id: reminder.order_id.clone(),
            invoice_id: reminder.invoice_id.clone(),
            amount_minor: reminder.outstanding_minor,
            currency: reminder.currency.clone(),
        }
    }
}
