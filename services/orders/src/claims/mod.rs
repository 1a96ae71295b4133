//! Claims on delivered goods (DESIGN §2 row 10): the customer reports a
//! shortage, damage, a quality problem or a wrong item instead of
//! accepting, a person decides how it is resolved, and the order is
//! accepted once no claim is open.
//!
//! How data flows:
//! - [`raise`] (RaiseClaim) checks the request ([`validate`]), takes the
//!   order's row lock, returns the first claim again for a request id seen
//!   before, refuses orders outside phase acceptance or already accepted,
//!   checks product and quantity against the lines and the units claimed so
//!   far, prices the claim, and stores it with its `ClaimRaised` outbox row
//!   and timeline entry in one transaction ([`store`] holds the SQL). The
//!   saga asks a person how to resolve it.
//! - [`resolve`] handles the saga's `ResolveClaim`: it records the
//!   resolution once and announces `ClaimResolved` as a fact keyed by the
//!   claim (a repeat carries the same event id and the stored payload), tells
//!   the customer ([`notice`] words it), and when no claim of the order is
//!   open any more and nobody accepted yet, accepts the order in the same
//!   transaction exactly as AcceptOrder does ([`crate::acceptance::record`]),
//!   so `OrderAccepted` follows.
//! - AcceptOrder is refused while a claim is open ([`store::open_count`]).

pub mod notice;
pub mod store;
pub mod validate;

use chrono::{SubsecRound, Utc};
use gendan_grpc::FieldError;
use gendan_messaging::{Cause, HandlerError, Incoming, Outgoing, outbox};
use gendan_proto::v1::{
    Claim, ClaimKind, ClaimRaised, ClaimResolution, ClaimResolved, Phase, RaiseClaimRequest,
    ResolveClaim,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::store::OrderState;
use crate::{Error, Result, SERVICE, acceptance, notices, timeline};

/// Who accepted an order that was accepted because its claims were all
/// resolved (`OrderAccepted.accepted_by`).
pub const CLAIMS_RESOLVED: &str = "claims resolved";

/// Raises the claim `request` asks for and returns it; a request id seen
/// before on the order returns the claim it raised and writes nothing.
pub async fn raise(pool: &PgPool, request: &RaiseClaimRequest) -> Result<Claim> {
    let new = validate::request(request)?;
    let order_id = new.order_id;
    let mut tx = pool.begin().await?;
    let state = crate::store::lock_state(&mut tx, order_id)
        .await?
        .ok_or_else(|| Error::OrderNotFound(order_id.to_string()))?;
    // Before the phase checks: a retry must find its claim even after the
    // order moved on (its claims resolved, the order accepted).
    if let Some(first) = store::by_request(&mut tx, order_id, &new.client_request_id).await? {
        tracing::debug!(claim_id = %first.claim_id, "claim request seen before");
        return Ok(first.to_claim());
    }
    raisable(&state)?;

    let order = crate::store::get_order(&mut tx, order_id)
        .await?
        .ok_or_else(|| Error::Inconsistent(format!("order {order_id} vanished")))?;
    let claimed = store::claimed_quantity(&mut tx, order_id, &new.product).await?;
    let value_minor =
        validate::against_lines(&new, &order.lines, u64::try_from(claimed).unwrap_or(0))?;

    let raised_at = Utc::now().trunc_subsecs(6);
    let stored = store::insert(&mut tx, Uuid::now_v7(), &new, value_minor, raised_at).await?;
    let claim = stored.to_claim();
    let order_id_text = order_id.to_string();
    let raised = Outgoing::event(
        SERVICE,
        &order_id_text,
        &ClaimRaised {
            claim: Some(claim.clone()),
        },
        &Cause::root(&order_id_text),
    );
    outbox::write(&mut tx, std::slice::from_ref(&raised)).await?;
    timeline::append_own(&mut tx, order_id, &raised).await?;
    tx.commit().await?;
    tracing::debug!(%order_id, claim_id = %claim.claim_id, "claim raised");
    Ok(claim)
}

/// A claim can be raised on delivered goods the customer has not accepted:
/// phase acceptance, not accepted, not closed.
fn raisable(state: &OrderState) -> Result<()> {
    let order_id = state.order_id;
    if let Some(closed_at) = state.closed_at {
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} was closed on {} and is read-only; claims can be raised only in \
             phase acceptance",
            closed_at.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    if let Some(accepted_at) = state.accepted_at {
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} was accepted on {} by {}; claims can be raised only in phase \
             acceptance, before the goods are accepted",
            accepted_at.format("%Y-%m-%d %H:%M UTC"),
            state.accepted_by.as_deref().unwrap_or("an unknown person")
        )));
    }
    if state.phase() != Phase::Acceptance {
        return Err(Error::FailedPrecondition(format!(
            "order {order_id} is in phase {}; claims can be raised only in phase acceptance \
             (after delivery)",
            state.phase().short_name()
        )));
    }
    Ok(())
}

/// The order's claims, oldest first.
pub async fn list(pool: &PgPool, order_id: &str) -> Result<Vec<Claim>> {
    let id = crate::validate::order_id(order_id)?;
    if crate::store::state(pool, id).await?.is_none() {
        return Err(Error::OrderNotFound(order_id.to_owned()));
    }
    let claims = store::list(pool, id).await?;
    Ok(claims.iter().map(store::StoredClaim::to_claim).collect())
}

/// Handles `ResolveClaim`: see the module documentation.
#[tracing::instrument(skip_all, fields(order_id = %message.order_id()), err(level = "debug"))]
pub async fn resolve(conn: &mut PgConnection, message: &Incoming) -> Result<(), HandlerError> {
    let command: ResolveClaim = message.payload()?;
    let order_text = message.order_id_or(&command.order_id)?;
    let reject = |err: FieldError| {
        HandlerError::Rejected(format!("ResolveClaim for order {order_text}: {err}"))
    };
    let order_id = crate::validate::order_id(&order_text).map_err(&reject)?;
    let claim_id = Uuid::parse_str(command.claim_id.trim()).map_err(|_| {
        reject(FieldError::new(
            "claim_id",
            format!("{:?} is not a claim id (a UUID)", command.claim_id),
        ))
    })?;
    let resolution = match ClaimResolution::try_from(command.resolution) {
        Ok(ClaimResolution::Unspecified) => {
            return Err(reject(FieldError::new(
                "resolution",
                "must be set (credit note, replacement, rework or rejected)",
            )));
        }
        Ok(resolution) => resolution,
        Err(_) => {
            return Err(reject(FieldError::new(
                "resolution",
                format!("{} is not a known resolution", command.resolution),
            )));
        }
    };
    // The note is quoted to the customer and in the acceptance note.
    if command.note.trim().chars().count() > crate::validate::MAX_NOTE_CHARS {
        return Err(reject(FieldError::new(
            "note",
            format!(
                "must be at most {} characters",
                crate::validate::MAX_NOTE_CHARS
            ),
        )));
    }

    // The order row first, as RaiseClaim and AcceptOrder lock it: the
    // count of open claims below cannot change under us.
    let state = crate::store::lock_state(conn, order_id)
        .await?
        .ok_or_else(|| {
            HandlerError::Rejected(format!("ResolveClaim for unknown order {order_id}"))
        })?;
    let claim = store::lock(conn, order_id, claim_id)
        .await?
        .ok_or_else(|| {
            reject(FieldError::new(
                "claim_id",
                format!("order {order_id} has no claim {claim_id}"),
            ))
        })?;

    let stored = if claim.is_open() {
        if state.is_closed() {
            return Err(HandlerError::Rejected(format!(
                "ResolveClaim for order {order_id}: the order is closed and read-only"
            )));
        }
        let open_before = store::open_count(conn, order_id).await?;
        debug_assert!(open_before >= 1, "the claim being resolved is open");
        let open_after = i32::try_from((open_before - 1).max(0)).unwrap_or(i32::MAX);
        let recorded = store::Resolution {
            resolution,
            note: command.note.trim(),
            at: Utc::now().trunc_subsecs(6),
            open_after,
        };
        store::resolve(conn, claim_id, recorded)
            .await?
            .ok_or_else(|| {
                HandlerError::Rejected(format!(
                    "claim {claim_id} of order {order_id} changed under its row lock"
                ))
            })?
    } else {
        // The saga re-sent (our answer was late or lost): answer again with
        // what was decided the first time, whatever this copy says.
        tracing::debug!(%claim_id, "claim already resolved, re-announcing");
        claim
    };

    let order_id_text = order_id.to_string();
    let cause = Cause::from_incoming(message);
    let resolved = ClaimResolved {
        claim: Some(stored.to_claim()),
        open_claims: u32::try_from(stored.open_claims_after.unwrap_or(0)).unwrap_or(0),
    };
    let announced = Outgoing::fact(
        SERVICE,
        &order_id_text,
        &resolved,
        &cause,
        &format!("claim:{claim_id}"),
    );
    outbox::write(conn, std::slice::from_ref(&announced)).await?;
    timeline::append_own(conn, order_id, &announced).await?;
    // Once per fact: the notice is keyed by the event id, which a repeat
    // shares.
    notices::on_event(conn, order_id, &announced.envelope, &cause).await?;

    // Claims exist only on goods delivered, so an order with one waits for
    // acceptance whatever phase this service has seen last: after a claim's
    // goods are made good and delivered again, the saga's move back to
    // acceptance may still be on its way on the other consumer.
    let waiting_for_acceptance = state.accepted_at.is_none()
        && !state.is_closed()
        && state.furthest_phase >= Phase::Acceptance as i32
        && state.phase() != Phase::Cancelled;
    if waiting_for_acceptance && store::open_count(conn, order_id).await? == 0 {
        let claims: Vec<Claim> = store::list(&mut *conn, order_id)
            .await?
            .iter()
            .map(store::StoredClaim::to_claim)
            .collect();
        let note = acceptance_note(&claims);
        acceptance::record(conn, order_id, CLAIMS_RESOLVED, &note, &cause).await?;
        tracing::debug!(%order_id, "every claim resolved, order accepted");
    }
    Ok(())
}

/// The acceptance note of an order accepted because its claims were
/// resolved: each claim and how it ended, oldest first.
pub fn acceptance_note(claims: &[Claim]) -> String {
    let resolutions: Vec<String> = claims
        .iter()
        .map(|claim| {
            let mut text = format!(
                "{} claim on {} × {}: {}",
                kind_name(claim.kind),
                claim.quantity,
                claim.product,
                resolution_name(claim.resolution)
            );
            if !claim.resolution_note.is_empty() {
                text.push_str(&format!(" ({})", claim.resolution_note));
            }
            text
        })
        .collect();
    format!("all claims resolved: {}", resolutions.join("; "))
}

/// `CLAIM_KIND_WRONG_ITEM` → `wrong item`.
pub fn kind_name(kind: i32) -> String {
    ClaimKind::try_from(kind)
        .map(|kind| words(kind.as_str_name(), "CLAIM_KIND_"))
        .unwrap_or_else(|_| format!("kind {kind}"))
}

/// `CLAIM_RESOLUTION_CREDIT_NOTE` → `credit note`; `open` while unresolved.
pub fn resolution_name(resolution: i32) -> String {
    match ClaimResolution::try_from(resolution) {
        Ok(ClaimResolution::Unspecified) => "open".to_owned(),
        Ok(resolution) => words(resolution.as_str_name(), "CLAIM_RESOLUTION_"),
        Err(_) => format!("resolution {resolution}"),
    }
}

fn words(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_words() {
        assert_eq!(kind_name(ClaimKind::WrongItem as i32), "wrong item");
        assert_eq!(kind_name(ClaimKind::Damage as i32), "damage");
        assert_eq!(kind_name(42), "kind 42");
        assert_eq!(
            resolution_name(ClaimResolution::CreditNote as i32),
            "credit note"
        );
        assert_eq!(resolution_name(ClaimResolution::Unspecified as i32), "open");
    }

    #[test]
    fn the_acceptance_note_lists_every_resolution() {
        let claims = [
            Claim {
                kind: ClaimKind::Damage as i32,
                product: "BRKT-100".to_owned(),
                quantity: 2,
                resolution: ClaimResolution::CreditNote as i32,
                ..Default::default()
            },
            Claim {
                kind: ClaimKind::Shortage as i32,
                product: "BRKT-200".to_owned(),
                quantity: 1,
                resolution: ClaimResolution::Rejected as i32,
                resolution_note: "counted complete at loading".to_owned(),
                ..Default::default()
            },
        ];
        assert_eq!(
            acceptance_note(&claims),
            "all claims resolved: damage claim on 2 × BRKT-100: credit note; shortage claim on \
             1 × BRKT-200: rejected (counted complete at loading)"
        );
    }
}
