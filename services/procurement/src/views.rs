//! The read side of purchasing's records, as the gRPC API shows them: one
//! purchase order with its lots and what its own order is allocated on it
//! (`GetPurchaseOrder`, `ConfirmPurchaseOrder`), and an order's materials —
//! requirements against reservations and what is still outstanding,
//! reservations, purchase orders, dates (`GetOrderMaterials`). Nothing here
//! writes; the records are kept by [`purchasing`].

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use gendan_proto::v1::{
    MaterialRequirement, OrderMaterials, PurchaseOrder, ReceivedLot, Reservation,
};
use gendan_proto::{date_to_string, timestamp_from};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::lots::LotRow;
use crate::netting::Milli;
use crate::purchasing::{self, PoRow};
use crate::{Result, milli_to_f64};

async fn lots_of(conn: &mut PgConnection, po_ids: &[Uuid]) -> Result<Vec<LotRow>> {
    Ok(sqlx::query_as(
        "SELECT po_id, lot, material, quantity_milli, received_at, status, inspection_id, \
           returned_to_supplier_at FROM lots WHERE po_id = ANY($1) ORDER BY received_at, lot",
    )
    .bind(po_ids)
    .fetch_all(conn)
    .await?)
}

fn lot_proto(lot: &LotRow) -> ReceivedLot {
    ReceivedLot {
        purchase_order_id: lot.po_id.to_string(),
        lot: lot.lot.clone(),
        quantity: milli_to_f64(lot.quantity_milli),
        received_at: Some(timestamp_from(lot.received_at)),
        inspection_status: lot.status.clone(),
        inspection_id: lot.inspection_id.clone().unwrap_or_default(),
        returned_to_supplier: lot.returned_to_supplier_at.is_some(),
    }
}

fn po_proto(row: &PoRow, lots: &[LotRow], allocated: Milli) -> PurchaseOrder {
    PurchaseOrder {
        purchase_order_id: row.po_id.to_string(),
        order_id: row.order_id.clone(),
        supplier: row.supplier.clone(),
        material: row.material.clone(),
        quantity: milli_to_f64(row.quantity_milli),
        unit_price_minor: row.unit_price_minor,
        amount_minor: row.amount_minor,
        currency: row.currency.clone(),
        expected_date: date_to_string(row.expected_date),
        confirmed_eta: row.confirmed_eta.map(date_to_string).unwrap_or_default(),
        status: row.status.clone(),
        accepted: milli_to_f64(row.accepted_milli),
        rejected: milli_to_f64(row.rejected_milli),
        replaces: row.replaces.map(|id| id.to_string()).unwrap_or_default(),
        lots: lots
            .iter()
            .filter(|lot| lot.po_id == row.po_id)
            .map(lot_proto)
            .collect(),
        allocated: milli_to_f64(allocated),
    }
}

/// One purchase order with its lots; `allocated` is what its own order is
/// allocated on it.
pub async fn purchase_order_proto(conn: &mut PgConnection, po: &PoRow) -> Result<PurchaseOrder> {
    let lots = lots_of(conn, &[po.po_id]).await?;
    let allocated: Option<i64> = sqlx::query_scalar(
        "SELECT quantity_milli FROM po_allocations WHERE po_id = $1 AND order_id = $2",
    )
    .bind(po.po_id)
    .bind(&po.order_id)
    .fetch_optional(conn)
    .await?;
    Ok(po_proto(po, &lots, allocated.unwrap_or(0)))
}

/// The material status of an order, or `None` when procurement never
/// handled it.
pub async fn order_materials(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<Option<OrderMaterials>> {
    let head: Option<(String, NaiveDate, Option<NaiveDate>)> = sqlx::query_as(
        "SELECT status, expected_ready_date, ready_on FROM procurements WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((status, expected_ready_date, ready_on)) = head else {
        return Ok(None);
    };
    let requirements: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT r.material, m.unit, r.required_milli FROM requirements r \
         JOIN materials m ON m.code = r.material WHERE r.order_id = $1 ORDER BY r.material",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let reservations: Vec<(String, i64)> = sqlx::query_as(
        "SELECT material, quantity_milli FROM reservations \
         WHERE order_id = $1 AND quantity_milli > 0 ORDER BY material",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let allocations: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
        "SELECT a.po_id, p.material, a.quantity_milli, a.received_milli FROM po_allocations a \
         JOIN purchase_orders p ON p.po_id = a.po_id WHERE a.order_id = $1",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let ids = purchasing::purchase_order_ids(conn, order_id).await?;
    let rows: Vec<PoRow> = sqlx::query_as(
        "SELECT po_id, order_id, supplier, material, quantity_milli, unit_price_minor, \
           amount_minor, currency, expected_date, confirmed_eta, status, accepted_milli, \
           rejected_milli, replaces FROM purchase_orders WHERE po_id = ANY($1) \
         ORDER BY created_at, po_id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let lots = lots_of(conn, &ids).await?;

    let reserved: HashMap<&str, i64> = reservations
        .iter()
        .map(|(material, quantity)| (material.as_str(), *quantity))
        .collect();
    let mut outstanding: HashMap<&str, i64> = HashMap::new();
    let mut allocated: HashMap<Uuid, i64> = HashMap::new();
    for (po_id, material, quantity, received) in &allocations {
        *outstanding.entry(material.as_str()).or_default() += quantity - received;
        allocated.insert(*po_id, *quantity);
    }
    let materials: BTreeSet<&str> = requirements.iter().map(|(m, _, _)| m.as_str()).collect();
    debug_assert_eq!(materials.len(), requirements.len());
    Ok(Some(OrderMaterials {
        order_id: order_id.to_owned(),
        status,
        requirements: requirements
            .iter()
            .map(|(material, unit, required)| MaterialRequirement {
                material: material.clone(),
                unit: unit.clone(),
                required: milli_to_f64(*required),
                reserved: milli_to_f64(reserved.get(material.as_str()).copied().unwrap_or(0)),
                outstanding: milli_to_f64(outstanding.get(material.as_str()).copied().unwrap_or(0)),
            })
            .collect(),
        reservations: reservations
            .iter()
            .map(|(material, quantity)| Reservation {
                material: material.clone(),
                quantity: milli_to_f64(*quantity),
            })
            .collect(),
        purchase_orders: rows
            .iter()
            .map(|row| po_proto(row, &lots, allocated.get(&row.po_id).copied().unwrap_or(0)))
            .collect(),
        expected_ready_date: date_to_string(expected_ready_date),
        ready_on: ready_on.map(date_to_string).unwrap_or_default(),
    }))
}
