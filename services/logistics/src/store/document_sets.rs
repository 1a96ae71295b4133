//! The order's document sets by revision (`document_sets`, each document
//! with its check result in `documents`).
//!
//! A set is saved per PrepareDocuments revision: a rejected set rebuilt
//! for the same revision replaces it (it was never filed); a set of an
//! amended order is a new revision, and [`save`] marks the earlier one
//! [`SET_SUPERSEDED`] and keeps it with its documents. The order's
//! documents are its current set, the highest revision ([`current`]).

use sqlx::PgConnection;

use super::{from_db, to_db};
use crate::Result;

pub const SET_READY: &str = "ready";
pub const SET_REJECTED: &str = "rejected";
/// An earlier revision, replaced by the documents of the amended order.
pub const SET_SUPERSEDED: &str = "superseded";

/// One stored document with its check result.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub name: String,
    pub content_json: String,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentSet {
    pub order_id: String,
    /// The PrepareDocuments revision it was prepared for (1 = the first).
    pub revision: u32,
    pub status: String,
    pub export: bool,
    pub problems: Vec<String>,
    /// The packing list revision the documents copied; `None` when the
    /// order had no packing list.
    pub packing_list_revision: Option<u32>,
    pub documents: Vec<Document>,
}

/// Stores `set` as the order's current document set: a set of the same
/// revision is replaced, earlier revisions become [`SET_SUPERSEDED`].
pub async fn save(conn: &mut PgConnection, set: &DocumentSet) -> Result<()> {
    debug_assert!(set.revision >= 1, "document set revisions start at 1");
    let revision = to_db(set.revision);
    sqlx::query(
        "UPDATE document_sets SET status = $3, updated_at = now() \
         WHERE order_id = $1 AND revision < $2 AND status <> $3",
    )
    .bind(&set.order_id)
    .bind(revision)
    .bind(SET_SUPERSEDED)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO document_sets (order_id, revision, status, export, problems, \
           packing_list_revision) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (order_id, revision) DO UPDATE SET status = EXCLUDED.status, \
           export = EXCLUDED.export, problems = EXCLUDED.problems, \
           packing_list_revision = EXCLUDED.packing_list_revision, updated_at = now()",
    )
    .bind(&set.order_id)
    .bind(revision)
    .bind(&set.status)
    .bind(set.export)
    .bind(&set.problems)
    .bind(set.packing_list_revision.map(to_db))
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM documents WHERE order_id = $1 AND revision = $2")
        .bind(&set.order_id)
        .bind(revision)
        .execute(&mut *conn)
        .await?;
    for (seq, document) in set.documents.iter().enumerate() {
        sqlx::query(
            "INSERT INTO documents (order_id, revision, seq, name, content, status, problems) \
             VALUES ($1, $2, $3, $4, $5::json, $6, $7)",
        )
        .bind(&set.order_id)
        .bind(revision)
        .bind(i32::try_from(seq).unwrap_or(i32::MAX))
        .bind(&document.name)
        .bind(&document.content_json)
        .bind(if document.problems.is_empty() {
            "ok"
        } else {
            "problems"
        })
        .bind(&document.problems)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A document set's row: revision, status, export, problems and the
/// packing list revision it copied.
type SetRow = (i32, String, bool, Vec<String>, Option<i32>);

/// The order's current document set (its highest revision).
pub async fn current(conn: &mut PgConnection, order_id: &str) -> Result<Option<DocumentSet>> {
    let row: Option<SetRow> = sqlx::query_as(
        "SELECT revision, status, export, problems, packing_list_revision FROM document_sets \
         WHERE order_id = $1 ORDER BY revision DESC LIMIT 1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((revision, status, export, problems, packing_list_revision)) = row else {
        return Ok(None);
    };
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT name, content::text, problems FROM documents \
         WHERE order_id = $1 AND revision = $2 ORDER BY seq",
    )
    .bind(order_id)
    .bind(revision)
    .fetch_all(conn)
    .await?;
    Ok(Some(DocumentSet {
        order_id: order_id.to_owned(),
        revision: from_db(revision),
        status,
        export,
        problems,
        packing_list_revision: packing_list_revision.map(from_db),
        documents: rows
            .into_iter()
            .map(|(name, content_json, problems)| Document {
                name,
                content_json,
                problems,
            })
            .collect(),
    }))
}
