//! Which materials each change names to [`purchasing::lock_materials`], and
//! the reads that decide them. Today the lock is one key for the whole
//! service whatever the materials (measured: docs/adr/0013); the callers
//! name their materials so a finer lock can return.
//!
//! | change | materials locked first | then |
//! | --- | --- | --- |
//! | `ProcureMaterials`, first or amended ([`commands`](crate::commands), [`holdings`](crate::holdings)) | what the command's items explode into ([`Items`]) and what the order holds | the order's row ([`lock_order`]) |
//! | `CancelMaterials` | what the order holds | the order's row ([`lock_order`]) |
//! | `CheckMaterials` | none: it claims nothing and writes only its answer | |
//! | `RestateFact` ([`restate`](crate::restate)) | what the order holds | none: it only reads |
//! | WMS receipt, inspection result, `ResourceMaterials`, `AcceptSupplierDelay`, `ConfirmPurchaseOrder` | the PO's material ([`lock_po_material`]): a replacement PO, the lots and the stock they enter are of the same material | the PO's row (and the lot's), then the rows of the orders it reaches ([`lock_orders`]) |
//! | `SetStock` | the material counted | |
//!
//! What an order holds ([`held_materials`]) is read before its locks are
//! taken. Only a command of the same order adds a material to it (a PO's
//! news stays within the PO's material, which its orders already hold),
//! and such a command holds the order's row until it ends; so once
//! [`lock_order`] holds the row, it reads the materials again and locks
//! whatever a command that committed in between added. That catch-up is
//! the one lock taken after a row.

use std::collections::{BTreeSet, HashMap};

use gendan_proto::v1::ProductQuantity;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::netting::{self, BomLine};
use crate::{Result, catalog, purchasing, validate};

/// A command's items, validated, with the bills of materials of their
/// products read once, before the locks: the plan is made from these, so
/// it nets exactly the materials locked whatever a `SetBillOfMaterials`
/// changes meanwhile. Invalid items (or `needed_by`) are the plan's
/// problem, not an error, as for every procurement.
#[derive(Debug)]
pub enum Items {
    Valid {
        items: Vec<(String, u32)>,
        boms: HashMap<String, Vec<BomLine>>,
    },
    Invalid(String),
}

impl Items {
    /// Validates `items` and `needed_by` and reads the bills of materials.
    pub async fn read(
        conn: &mut PgConnection,
        items: &[ProductQuantity],
        needed_by: &str,
    ) -> Result<Items> {
        let items = match validate::items(items, "items") {
            Ok(items) => items,
            Err(field) => return Ok(Items::Invalid(field.to_string())),
        };
        // needed_by is informational here (production plans against the
        // earliest material date), but a malformed one is still reported.
        if let Err(field) = validate::optional_date(needed_by, "needed_by") {
            return Ok(Items::Invalid(field.to_string()));
        }
        let products: Vec<String> = items.iter().map(|(product, _)| product.clone()).collect();
        let boms = catalog::boms(conn, &products).await?;
        Ok(Items::Valid { items, boms })
    }

    /// The materials the items explode into; none when they are invalid.
    pub fn materials(&self) -> Vec<String> {
        match self {
            Items::Valid { items, boms } => {
                let (required, _) = netting::explode(items, boms);
                required.into_keys().collect()
            }
            Items::Invalid(_) => Vec::new(),
        }
    }
}

/// The materials `order_id` holds: reserved for it, allocated to it on a
/// PO, or on a PO placed for it (which its cancellation cancels). Each
/// part is looked up by order id.
pub async fn held_materials(conn: &mut PgConnection, order_id: &str) -> Result<BTreeSet<String>> {
    let materials: Vec<String> = sqlx::query_scalar(
        "SELECT material FROM reservations WHERE order_id = $1 \
         UNION SELECT p.material FROM po_allocations a \
           JOIN purchase_orders p ON p.po_id = a.po_id WHERE a.order_id = $1 \
         UNION SELECT material FROM purchase_orders WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    Ok(materials.into_iter().collect())
}

/// Takes the locks of a command about `order_id`: the materials `needed`
/// by its items and every material the order holds, then the order's row
/// (see the module doc). Returns the order's procurement status, `None`
/// when it was neither procured nor cancelled.
pub async fn lock_order(
    conn: &mut PgConnection,
    order_id: &str,
    needed: &[String],
) -> Result<Option<String>> {
    let mut locked = held_materials(conn, order_id).await?;
    locked.extend(needed.iter().cloned());
    let materials: Vec<&String> = locked.iter().collect();
    purchasing::lock_materials(conn, &materials).await?;
    let status = purchasing::status_for_update(conn, order_id).await?;
    if status.is_none() {
        // Nothing is held without a row: a first procurement in flight is
        // not visible, and its row would make ours fail to insert.
        return Ok(None);
    }
    let added: Vec<String> = held_materials(conn, order_id)
        .await?
        .into_iter()
        .filter(|material| !locked.contains(material))
        .collect();
    if !added.is_empty() {
        // After the row, against the ascending rule: a deadlock this causes
        // is found by Postgres and the message retried.
        tracing::info!(materials = ?added, "order holds materials added since its first read");
        purchasing::lock_materials(conn, &added).await?;
    }
    Ok(status)
}

/// Locks the material of purchase order `po_id`, read without the lock: a
/// PO's material never changes. An unknown PO locks nothing; the caller's
/// read under the lock finds it missing.
pub async fn lock_po_material(conn: &mut PgConnection, po_id: Uuid) -> Result<()> {
    let material: Option<String> =
        sqlx::query_scalar("SELECT material FROM purchase_orders WHERE po_id = $1")
            .bind(po_id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(material) = material {
        purchasing::lock_materials(conn, std::slice::from_ref(&material)).await?;
    }
    Ok(())
}

/// Locks the `procurements` rows of `orders` in ascending order id, in one
/// statement (`FOR UPDATE` locks the rows as the ordered scan returns
/// them): a PO's news reaches every order waiting on it, and two
/// transactions that each lock several orders must not take them in
/// opposite orders. Orders without a row are skipped. Taken after the
/// materials, as every row is.
pub async fn lock_orders(conn: &mut PgConnection, orders: &[String]) -> Result<()> {
    if orders.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT order_id FROM procurements WHERE order_id = ANY($1) ORDER BY order_id FOR NO KEY UPDATE",
    )
    .bind(orders)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(material: &str) -> BomLine {
        BomLine {
            material: material.to_owned(),
            per_unit: 1000,
            scrap_bp: 0,
        }
    }

    #[test]
    fn a_command_locks_the_materials_its_items_explode_into() {
        let boms = HashMap::from([
            ("shirt".to_owned(), vec![line("fabric"), line("button")]),
            ("jacket".to_owned(), vec![line("fabric"), line("zip")]),
        ]);
        let items = Items::Valid {
            items: vec![
                ("shirt".to_owned(), 2),
                ("jacket".to_owned(), 1),
                // No BOM: the plan's problem, nothing to lock.
                ("scarf".to_owned(), 1),
            ],
            boms,
        };
        assert_eq!(items.materials(), ["button", "fabric", "zip"]);
        let invalid = Items::Invalid("items: at least one product is required".to_owned());
        assert!(invalid.materials().is_empty());
    }
}
