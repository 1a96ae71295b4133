//! The inbox: which messages a consumer has already handled.
//!
//! A consumer claims a message id in the transaction that applies the
//! message's effect, so both commit or neither does: a redelivery finds the
//! id taken and has no second effect. [`claim_all`] claims a whole batch in
//! one statement; [`claim`] is the same for one message.

use std::collections::HashSet;

use sqlx::PgConnection;

/// Records `message_id` as handled by `consumer`; `false` when it already was,
/// in which case the caller must skip the effect. Call it in the transaction
/// that applies the effect so both commit or neither does.
pub async fn claim(
    conn: &mut PgConnection,
    consumer: &str,
    message_id: &str,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(message_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Records every id of `message_ids` as handled by `consumer` in one
/// statement and returns the ids that were not already recorded: the
/// messages whose effect the caller must apply, in the same transaction.
/// An id listed twice is claimed once (and returned once).
pub async fn claim_all(
    conn: &mut PgConnection,
    consumer: &str,
    message_ids: &[&str],
) -> sqlx::Result<HashSet<String>> {
    if message_ids.is_empty() {
        return Ok(HashSet::new());
    }
    // DISTINCT: one INSERT must not name the same key twice, and a batch can
    // carry the same message twice (a redelivery while the first copy waited
    // in the client's buffer).
    let fresh: Vec<String> = sqlx::query_scalar(
        "INSERT INTO inbox (consumer, message_id) \
         SELECT DISTINCT $1::text, unnest($2::text[]) \
         ON CONFLICT DO NOTHING RETURNING message_id",
    )
    .bind(consumer)
    .bind(message_ids)
    .fetch_all(conn)
    .await?;
    Ok(fresh.into_iter().collect())
}
