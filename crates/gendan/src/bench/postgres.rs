//! PostgreSQL's own counters for the bench's database, read before and
//! after a run: transactions (`pg_stat_database`: committed plus rolled
//! back) and statements (`pg_stat_statements`: the calls of every statement
//! run in this database, when the extension is there to count them).
//!
//! Both count everything that used the database during the run, the
//! bench's own few reads included; backends report their transactions
//! lazily (up to a second late), which is why CI gives the bench a
//! database of its own. pg_stat_statements counts only when it is in
//! `shared_preload_libraries` and created in the database
//! (`CREATE EXTENSION pg_stat_statements`); it counts the statements
//! clients sent (top level), and forgets the least used ones past
//! `pg_stat_statements.max`, which a run of a few hundred distinct
//! statements stays well under.

use sqlx::Connection;

/// What the database had counted at one moment.
#[derive(Debug, Clone)]
pub(super) struct Counts {
    /// Committed plus rolled-back transactions.
    pub(super) transactions: i64,
    /// Calls of every statement, or why they cannot be counted.
    pub(super) statements: Result<i64, String>,
}

/// Why statements cannot be counted, as the figure says it.
const NOT_LOADED: &str = "pg_stat_statements not loaded";

pub(super) async fn counts(database_url: &str) -> anyhow::Result<Counts> {
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let transactions: i64 = sqlx::query_scalar(
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await?;
    let statements = statement_calls(&mut conn).await;
    Ok(Counts {
        transactions,
        statements,
    })
}

async fn statement_calls(conn: &mut sqlx::PgConnection) -> Result<i64, String> {
    let created: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(|err| err.to_string())?;
    if created.is_none() {
        return Err(NOT_LOADED.to_owned());
    }
    // Created but missing from shared_preload_libraries, the view refuses
    // to be read: not loaded either, as far as counting goes.
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(calls), 0)::bigint FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(conn)
    .await
    .map_err(|_| NOT_LOADED.to_owned())
}

/// Statements per order between two readings, or why there is no figure.
pub(super) fn statements_per(before: &Counts, after: &Counts, orders: f64) -> Result<f64, String> {
    let before = before.statements.clone()?;
    let after = after.statements.clone()?;
    Ok((after - before) as f64 / orders)
}
