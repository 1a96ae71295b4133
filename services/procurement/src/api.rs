//! The `gendan.v1.ProcurementService` gRPC API.
//!
//! Each call validates its whole request ([`validate`]) before touching the
//! database, then reads or writes through [`catalog`] and [`purchasing`].
//! References to stored things in a request being written (the material of
//! a BOM line, the supplier of an offer) are request fields, so an unknown
//! one is `InvalidArgument` naming the field; the thing a read or a stock
//! count is *about* is `NotFound` when unknown. Errors become statuses only
//! through [`gendan_grpc::into_status`].

use gendan_grpc::{FieldError, into_status};
use gendan_messaging::Turnstile;
use gendan_messaging::{Cause, outbox};
use gendan_proto::v1::procurement_service_server::ProcurementService;
use gendan_proto::v1::{
    BillOfMaterials, BomLine as WireBomLine, ConfirmPurchaseOrderRequest,
    GetBillOfMaterialsRequest, GetOrderMaterialsRequest, GetPurchaseOrderRequest, GetStockRequest,
    ListMaterialsRequest, ListMaterialsResponse, ListSupplierOffersRequest,
    ListSupplierOffersResponse, ListSuppliersRequest, ListSuppliersResponse, Material,
    OrderMaterials, PurchaseOrder, SetStockRequest, StockLevel, Supplier, SupplierOffer,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::clock::Calendar;
use crate::purchasing;
use crate::{Error, Result, catalog, delays, locks, milli_to_f64, validate, views};

#[derive(Debug, Clone)]
pub struct ProcurementApi {
    pool: PgPool,
    calendar: Calendar,
    /// Entered before a transaction that takes the materials lock.
    turnstile: Turnstile,
}

impl ProcurementApi {
    pub fn new(pool: PgPool, calendar: Calendar, turnstile: Turnstile) -> Self {
        ProcurementApi {
            pool,
            calendar,
            turnstile,
        }
    }

    async fn store_material(&self, request: &Material) -> Result<Material> {
        let material = validate::material(request)?;
        let mut conn = self.pool.acquire().await?;
        catalog::upsert_material(&mut conn, &material).await?;
        Ok(material)
    }

    async fn store_supplier(&self, request: &Supplier) -> Result<Supplier> {
        let supplier = validate::supplier(request)?;
        let mut conn = self.pool.acquire().await?;
        catalog::upsert_supplier(&mut conn, &supplier).await?;
        Ok(supplier)
    }

    async fn store_offer(&self, request: &SupplierOffer) -> Result<SupplierOffer> {
        let offer = validate::offer(request)?;
        let mut tx = self.pool.begin().await?;
        let currency = catalog::supplier_currency(&mut tx, &offer.supplier)
            .await?
            .ok_or_else(|| {
                FieldError::new("supplier", format!("unknown supplier {:?}", offer.supplier))
            })?;
        if catalog::unit_of(&mut tx, &offer.material).await?.is_none() {
            return Err(FieldError::new(
                "material",
                format!("unknown material {:?}", offer.material),
            )
            .into());
        }
        catalog::upsert_offer(&mut tx, &offer).await?;
        tx.commit().await?;
        Ok(SupplierOffer {
            supplier: offer.supplier,
            material: offer.material,
            lead_time_days: offer.lead_time_days,
            unit_price_minor: offer.unit_price_minor,
            minimum_order_quantity: milli_to_f64(offer.moq),
            currency,
        })
    }

    async fn list_offers(
        &self,
        request: &ListSupplierOffersRequest,
    ) -> Result<ListSupplierOffersResponse> {
        let material = request.material.trim();
        let filter = (!material.is_empty()).then(|| vec![material.to_owned()]);
        let mut conn = self.pool.acquire().await?;
        let offers = catalog::offers_proto(&mut conn, filter.as_deref()).await?;
        Ok(ListSupplierOffersResponse { offers })
    }

    async fn replace_bom(&self, request: &BillOfMaterials) -> Result<BillOfMaterials> {
        let (product, lines) = validate::bill_of_materials(request)?;
        let mut tx = self.pool.begin().await?;
        let codes: Vec<String> = lines.iter().map(|line| line.material.clone()).collect();
        let known = catalog::existing_materials(&mut tx, &codes).await?;
        if let Some((i, line)) = lines
            .iter()
            .enumerate()
            .find(|(_, line)| !known.contains(&line.material))
        {
            return Err(FieldError::new(
                format!("lines[{i}].material"),
                format!("unknown material {:?}", line.material),
            )
            .into());
        }
        catalog::set_bom(&mut tx, &product, &lines).await?;
        tx.commit().await?;
        Ok(bom_proto(product, &lines))
    }

    async fn find_bom(&self, request: &GetBillOfMaterialsRequest) -> Result<BillOfMaterials> {
        let product = validate::required_text(&request.product, "product")?;
        let mut conn = self.pool.acquire().await?;
        let mut boms = catalog::boms(&mut conn, std::slice::from_ref(&product)).await?;
        let lines = boms
            .remove(&product)
            .ok_or_else(|| Error::NoBillOfMaterials(product.clone()))?;
        Ok(bom_proto(product, &lines))
    }

    async fn count_stock(&self, request: &SetStockRequest) -> Result<StockLevel> {
        let material = validate::required_text(&request.material, "material")?;
        let on_hand = validate::quantity(request.on_hand, "on_hand")?;
        let _turn = self.turnstile.enter().await;
        let mut tx = self.pool.begin().await?;
        // Netting reads the material's free stock: not while it is counted.
        purchasing::lock_materials(&mut tx, std::slice::from_ref(&material)).await?;
        let unit = catalog::unit_of(&mut tx, &material)
            .await?
            .ok_or_else(|| Error::UnknownMaterial(material.clone()))?;
        let figures = purchasing::stock_figures(&mut tx, &material).await?;
        if on_hand < figures.reserved {
            return Err(Error::NotAllowed(format!(
                "{} {unit} of {material:?} are reserved for orders; a count of {} would \
                 leave them short (cancel or re-plan those orders first)",
                milli_to_f64(figures.reserved),
                milli_to_f64(on_hand)
            )));
        }
        purchasing::set_on_hand(&mut tx, &material, on_hand).await?;
        let figures = purchasing::stock_figures(&mut tx, &material).await?;
        tx.commit().await?;
        Ok(stock_level(material, unit, figures))
    }

    async fn find_stock(&self, request: &GetStockRequest) -> Result<StockLevel> {
        let material = validate::required_text(&request.material, "material")?;
        let mut conn = self.pool.acquire().await?;
        let unit = catalog::unit_of(&mut conn, &material)
            .await?
            .ok_or_else(|| Error::UnknownMaterial(material.clone()))?;
        let figures = purchasing::stock_figures(&mut conn, &material).await?;
        Ok(stock_level(material, unit, figures))
    }

    async fn find_order(&self, request: &GetOrderMaterialsRequest) -> Result<OrderMaterials> {
        let order_id = validate::required_text(&request.order_id, "order_id")?;
        // One snapshot, so the requirements and the POs agree.
        let mut tx = self.pool.begin().await?;
        let materials = views::order_materials(&mut tx, &order_id)
            .await?
            .ok_or_else(|| Error::OrderNotFound(order_id.clone()))?;
        tx.rollback().await?;
        Ok(materials)
    }

    async fn find_purchase_order(
        &self,
        request: &GetPurchaseOrderRequest,
    ) -> Result<PurchaseOrder> {
        let po_id = validate::uuid(&request.purchase_order_id, "purchase_order_id")?;
        let mut conn = self.pool.acquire().await?;
        let po = purchasing::find_po(&mut conn, po_id, false)
            .await?
            .ok_or_else(|| Error::UnknownPurchaseOrder(po_id.to_string()))?;
        views::purchase_order_proto(&mut conn, &po).await
    }

    async fn confirm(&self, request: &ConfirmPurchaseOrderRequest) -> Result<PurchaseOrder> {
        let po_id = validate::uuid(&request.purchase_order_id, "purchase_order_id")?;
        let eta = validate::date(&request.confirmed_eta, "confirmed_eta")?;
        let today = self.calendar.today();
        if eta < today {
            return Err(FieldError::new("confirmed_eta", format!("{eta} is in the past")).into());
        }
        let _turn = self.turnstile.enter().await;
        let mut tx = self.pool.begin().await?;
        locks::lock_po_material(&mut tx, po_id).await?;
        let po = purchasing::find_po(&mut tx, po_id, true)
            .await?
            .ok_or_else(|| Error::UnknownPurchaseOrder(po_id.to_string()))?;
        if !po.is_open() {
            return Err(Error::NotAllowed(format!(
                "purchase order {po_id} is {}; only an open purchase order can be confirmed",
                po.status
            )));
        }
        let previous = po.expected();
        purchasing::confirm(&mut tx, po_id, eta).await?;
        if eta > previous {
            let orders = delays::waiting_orders(&mut tx, po.po_id, &po.order_id).await?;
            let reason = format!(
                "supplier {} confirmed purchase order {} ({}) for {eta}, expected {previous}",
                po.supplier, po.po_id, po.material
            );
            // A supplier's confirmation is a first cause in the order's workflow.
            let delayed =
                delays::announce_moved_dates(&mut tx, &orders, po.po_id, &reason, today, |order| {
                    Cause::root(order.to_owned())
                })
                .await?;
            outbox::write(&mut tx, &delayed).await?;
        }
        let po = purchasing::find_po(&mut tx, po_id, false)
            .await?
            .ok_or_else(|| Error::UnknownPurchaseOrder(po_id.to_string()))?;
        let answer = views::purchase_order_proto(&mut tx, &po).await?;
        tx.commit().await?;
        Ok(answer)
    }
}

fn bom_proto(product: String, lines: &[crate::netting::BomLine]) -> BillOfMaterials {
    BillOfMaterials {
        product,
        lines: lines
            .iter()
            .map(|line| WireBomLine {
                material: line.material.clone(),
                quantity_per_unit: milli_to_f64(line.per_unit),
                scrap_percent: line.scrap_bp as f64 / 100.0,
            })
            .collect(),
    }
}

fn stock_level(material: String, unit: String, figures: purchasing::StockFigures) -> StockLevel {
    StockLevel {
        material,
        unit,
        on_hand: milli_to_f64(figures.on_hand),
        reserved: milli_to_f64(figures.reserved),
        free: milli_to_f64((figures.on_hand - figures.reserved).max(0)),
        on_order: milli_to_f64(figures.on_order),
    }
}

fn answer<T>(result: Result<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(into_status)
}

#[tonic::async_trait]
impl ProcurementService for ProcurementApi {
    #[tracing::instrument(skip_all, fields(code = %request.get_ref().code))]
    async fn upsert_material(
        &self,
        request: Request<Material>,
    ) -> Result<Response<Material>, Status> {
        answer(self.store_material(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_materials(
        &self,
        _request: Request<ListMaterialsRequest>,
    ) -> Result<Response<ListMaterialsResponse>, Status> {
        let list = async {
            let mut conn = self.pool.acquire().await?;
            Ok(ListMaterialsResponse {
                materials: catalog::materials(&mut conn).await?,
            })
        };
        answer(list.await)
    }

    #[tracing::instrument(skip_all, fields(code = %request.get_ref().code))]
    async fn upsert_supplier(
        &self,
        request: Request<Supplier>,
    ) -> Result<Response<Supplier>, Status> {
        answer(self.store_supplier(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_suppliers(
        &self,
        _request: Request<ListSuppliersRequest>,
    ) -> Result<Response<ListSuppliersResponse>, Status> {
        let list = async {
            let mut conn = self.pool.acquire().await?;
            Ok(ListSuppliersResponse {
                suppliers: catalog::suppliers(&mut conn).await?,
            })
        };
        answer(list.await)
    }

    #[tracing::instrument(skip_all, fields(supplier = %request.get_ref().supplier, material = %request.get_ref().material))]
    async fn upsert_supplier_offer(
        &self,
        request: Request<SupplierOffer>,
    ) -> Result<Response<SupplierOffer>, Status> {
        answer(self.store_offer(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_supplier_offers(
        &self,
        request: Request<ListSupplierOffersRequest>,
    ) -> Result<Response<ListSupplierOffersResponse>, Status> {
        answer(self.list_offers(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().product))]
    async fn set_bill_of_materials(
        &self,
        request: Request<BillOfMaterials>,
    ) -> Result<Response<BillOfMaterials>, Status> {
        answer(self.replace_bom(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().product))]
    async fn get_bill_of_materials(
        &self,
        request: Request<GetBillOfMaterialsRequest>,
    ) -> Result<Response<BillOfMaterials>, Status> {
        answer(self.find_bom(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(material = %request.get_ref().material))]
    async fn set_stock(
        &self,
        request: Request<SetStockRequest>,
    ) -> Result<Response<StockLevel>, Status> {
        answer(self.count_stock(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(material = %request.get_ref().material))]
    async fn get_stock(
        &self,
        request: Request<GetStockRequest>,
    ) -> Result<Response<StockLevel>, Status> {
        answer(self.find_stock(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_order_materials(
        &self,
        request: Request<GetOrderMaterialsRequest>,
    ) -> Result<Response<OrderMaterials>, Status> {
        answer(self.find_order(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(purchase_order_id = %request.get_ref().purchase_order_id))]
    async fn get_purchase_order(
        &self,
        request: Request<GetPurchaseOrderRequest>,
    ) -> Result<Response<PurchaseOrder>, Status> {
        answer(self.find_purchase_order(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(purchase_order_id = %request.get_ref().purchase_order_id))]
    async fn confirm_purchase_order(
        &self,
        request: Request<ConfirmPurchaseOrderRequest>,
    ) -> Result<Response<PurchaseOrder>, Status> {
        answer(self.confirm(request.get_ref()).await)
    }
}
