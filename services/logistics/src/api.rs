//! The `gendan.v1.LogisticsService` gRPC API.
//!
//! Each call validates its request completely ([`validate`]) before touching
//! the database, then reads or writes through [`catalog`] and [`store`].
//! Errors become statuses only through [`gendan_grpc::into_status`], so the
//! code of every failure is decided by `impl ServiceErrorCode for Error`.

use gendan_grpc::into_status;
use gendan_proto::v1::logistics_service_server::LogisticsService;
use gendan_proto::v1::{
    CarrierLane, DocumentSet, GetDocumentsRequest, GetPackingListRequest, GetPackingSpecRequest,
    GetProductMasterRequest, GetShipmentRequest, ListCarrierLanesRequest, ListCarrierLanesResponse,
    PackingCheck, PackingList, PackingListCarton, PackingSpec, ProductMaster, ProductPackingRule,
    Shipment, ShipmentTrackingEntry, ShippingDocument,
};
use gendan_proto::{date_to_string, timestamp_from};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::booking::Lane;
use crate::catalog::{self, ProductRecord};
use crate::packing::Spec;
use crate::store::{self, document_sets, packing_lists};
use crate::{Error, Result, validate};

#[derive(Debug, Clone)]
pub struct LogisticsApi {
    pool: PgPool,
}

impl LogisticsApi {
    pub fn new(pool: PgPool) -> Self {
        LogisticsApi { pool }
    }

    async fn store_spec(&self, request: &PackingSpec) -> Result<PackingSpec> {
        let spec = validate::packing_spec(request)?;
        let mut tx = self.pool.begin().await?;
        catalog::upsert_spec(&mut tx, &spec).await?;
        tx.commit().await?;
        Ok(spec_proto(&spec))
    }

    async fn find_spec(&self, request: &GetPackingSpecRequest) -> Result<PackingSpec> {
        let customer = validate::key(&request.customer, "customer")?;
        let mut conn = self.pool.acquire().await?;
        let spec = catalog::spec(&mut conn, &customer)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no packing spec for customer {customer:?}")))?;
        Ok(spec_proto(&spec))
    }

    async fn store_product(&self, request: &ProductMaster) -> Result<ProductMaster> {
        let product = validate::product_master(request)?;
        let mut conn = self.pool.acquire().await?;
        catalog::upsert_product(&mut conn, &product).await?;
        Ok(product_proto(&product))
    }

    async fn find_product(&self, request: &GetProductMasterRequest) -> Result<ProductMaster> {
        let product = validate::key(&request.product, "product")?;
        let mut conn = self.pool.acquire().await?;
        let record = catalog::product(&mut conn, &product)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no product data for {product:?}")))?;
        Ok(product_proto(&record))
    }

    async fn store_lane(&self, request: &CarrierLane) -> Result<CarrierLane> {
        let lane = validate::carrier_lane(request)?;
        let mut conn = self.pool.acquire().await?;
        catalog::upsert_lane(&mut conn, &lane).await?;
        Ok(lane_proto(&lane))
    }

    async fn all_lanes(&self) -> Result<ListCarrierLanesResponse> {
        let mut conn = self.pool.acquire().await?;
        let lanes = catalog::lanes(&mut conn).await?;
        Ok(ListCarrierLanesResponse {
            lanes: lanes.iter().map(lane_proto).collect(),
        })
    }

    async fn find_packing_list(&self, request: &GetPackingListRequest) -> Result<PackingList> {
        let order_id = validate::order_id(&request.order_id, "order_id")?;
        let mut conn = self.pool.acquire().await?;
        // The current list: an amended order's earlier lists are superseded.
        let list = packing_lists::current(&mut conn, &order_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no packing list for order {order_id}")))?;
        let checks = packing_lists::checks(&mut conn, &order_id, list.revision).await?;
        Ok(PackingList {
            order_id: list.order_id.clone(),
            customer: list.customer.clone(),
            total_cartons: u32::try_from(list.cartons.len()).unwrap_or(u32::MAX),
            total_net_weight_kg: list.total_net_kg(),
            total_gross_weight_kg: list.total_gross_kg(),
            status: list.status.clone(),
            barcode_type: list.requirements.barcode.name().to_owned(),
            max_gross_weight_kg: list.requirements.max_gross_weight_kg,
            cartons: list
                .cartons
                .into_iter()
                .map(|carton| PackingListCarton {
                    carton_number: carton.carton_number,
                    product: carton.product,
                    quantity: carton.quantity,
                    marks: carton.marks,
                    net_weight_kg: carton.net_weight_kg,
                    gross_weight_kg: carton.gross_weight_kg,
                })
                .collect(),
            checks: checks
                .into_iter()
                .map(|check| PackingCheck {
                    matches: check.matches,
                    mismatches: check.mismatches,
                    checked_at: Some(timestamp_from(check.checked_at)),
                })
                .collect(),
        })
    }

    async fn find_documents(&self, request: &GetDocumentsRequest) -> Result<DocumentSet> {
        let order_id = validate::order_id(&request.order_id, "order_id")?;
        let mut conn = self.pool.acquire().await?;
        let set = document_sets::current(&mut conn, &order_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no documents for order {order_id}")))?;
        Ok(DocumentSet {
            order_id: set.order_id,
            status: set.status,
            problems: set.problems,
            export: set.export,
            documents: set
                .documents
                .into_iter()
                .map(|document| ShippingDocument {
                    status: if document.problems.is_empty() {
                        "ok"
                    } else {
                        "problems"
                    }
                    .to_owned(),
                    name: document.name,
                    content_json: document.content_json,
                    problems: document.problems,
                })
                .collect(),
        })
    }

    async fn find_shipment(&self, request: &GetShipmentRequest) -> Result<Shipment> {
        let order_id = validate::order_id(&request.order_id, "order_id")?;
        let mut conn = self.pool.acquire().await?;
        let shipment = store::shipment(&mut conn, &order_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no shipment for order {order_id}")))?;
        // The order's current booking: after a redelivery, the replacement
        // goods' (the earlier shipment stays on its booking's record).
        let tracking = store::tracking(&mut conn, &order_id, shipment.revision).await?;
        Ok(Shipment {
            order_id: shipment.order_id,
            status: shipment.status,
            lane_code: shipment.lane_code,
            carrier: shipment.carrier,
            mode: shipment.mode,
            ready_date: date_to_string(shipment.ready_date),
            etd: date_to_string(shipment.etd),
            eta: date_to_string(shipment.eta),
            booking_reference: shipment.booking_reference,
            freight_cost_minor: shipment.freight_cost_minor,
            currency: shipment.currency,
            meets_requested_date: shipment.meets_requested_date,
            bill_of_lading: shipment.bill_of_lading.unwrap_or_default(),
            shipped_on: shipment.shipped_on.map(date_to_string).unwrap_or_default(),
            tracking: tracking
                .into_iter()
                .map(|entry| ShipmentTrackingEntry {
                    status: entry.status,
                    location: entry.location,
                    at: Some(timestamp_from(entry.at)),
                })
                .collect(),
            delivered_on: shipment
                .delivered_on
                .map(date_to_string)
                .unwrap_or_default(),
            proof_of_delivery: shipment.proof_of_delivery.unwrap_or_default(),
            cancel_reason: shipment.cancel_reason.unwrap_or_default(),
        })
    }
}

fn spec_proto(spec: &Spec) -> PackingSpec {
    PackingSpec {
        customer: spec.customer.clone(),
        default_units_per_carton: spec.default_units_per_carton,
        product_rules: spec
            .units_per_carton
            .iter()
            .map(|(product, units)| ProductPackingRule {
                product: product.clone(),
                units_per_carton: *units,
            })
            .collect(),
        marks_template: spec.marks_template.clone(),
        barcode_type: spec.barcode.name().to_owned(),
        max_gross_weight_kg: spec.max_gross_weight_kg,
        carton_tare_kg: spec.carton_tare_kg,
    }
}

fn product_proto(product: &ProductRecord) -> ProductMaster {
    ProductMaster {
        product: product.product.clone(),
        description: product.description.clone(),
        hs_code: product.hs_code.clone(),
        unit_net_weight_kg: product.unit_net_weight_kg,
        country_of_origin: product.country_of_origin.clone(),
    }
}

fn lane_proto(lane: &Lane) -> CarrierLane {
    CarrierLane {
        code: lane.code.clone(),
        carrier: lane.carrier.clone(),
        mode: lane.mode.name().to_owned(),
        departure_weekday: lane.departure_weekday,
        transit_days: lane.transit_days,
        cutoff_days: lane.cutoff_days,
        cost_basis: lane.cost_basis.name().to_owned(),
        rate_minor: lane.rate_minor,
        currency: lane.currency.clone(),
    }
}

fn reply<T>(result: Result<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(into_status)
}

#[tonic::async_trait]
impl LogisticsService for LogisticsApi {
    #[tracing::instrument(skip_all, fields(customer = %request.get_ref().customer))]
    async fn upsert_packing_spec(
        &self,
        request: Request<PackingSpec>,
    ) -> Result<Response<PackingSpec>, Status> {
        reply(self.store_spec(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(customer = %request.get_ref().customer))]
    async fn get_packing_spec(
        &self,
        request: Request<GetPackingSpecRequest>,
    ) -> Result<Response<PackingSpec>, Status> {
        reply(self.find_spec(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().product))]
    async fn upsert_product_master(
        &self,
        request: Request<ProductMaster>,
    ) -> Result<Response<ProductMaster>, Status> {
        reply(self.store_product(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(product = %request.get_ref().product))]
    async fn get_product_master(
        &self,
        request: Request<GetProductMasterRequest>,
    ) -> Result<Response<ProductMaster>, Status> {
        reply(self.find_product(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(code = %request.get_ref().code))]
    async fn upsert_carrier_lane(
        &self,
        request: Request<CarrierLane>,
    ) -> Result<Response<CarrierLane>, Status> {
        reply(self.store_lane(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_carrier_lanes(
        &self,
        _request: Request<ListCarrierLanesRequest>,
    ) -> Result<Response<ListCarrierLanesResponse>, Status> {
        reply(self.all_lanes().await)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_packing_list(
        &self,
        request: Request<GetPackingListRequest>,
    ) -> Result<Response<PackingList>, Status> {
        reply(self.find_packing_list(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_documents(
        &self,
        request: Request<GetDocumentsRequest>,
    ) -> Result<Response<DocumentSet>, Status> {
        reply(self.find_documents(request.get_ref()).await)
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_shipment(
        &self,
        request: Request<GetShipmentRequest>,
    ) -> Result<Response<Shipment>, Status> {
        reply(self.find_shipment(request.get_ref()).await)
    }
}
