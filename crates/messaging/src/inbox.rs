//! The inbox: which messages a consumer has already handled.

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
