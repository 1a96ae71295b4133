//! An amended order's packing list and documents in the logistics service,
//! against real NATS and PostgreSQL. The test plays the saga (PreparePacking
//! and PrepareDocuments by revision) and the warehouse (packed reports):
//! the amended order is packed again as a new list revision, the earlier
//! list stays on record superseded and is never checked again, repeats
//! answer the same fact under the same event id, and the documents of the
//! new revision copy the new list.

use std::time::Duration;

use gendan_logistics::{Application, WMS_PACKED_SUBJECT};
use gendan_messaging::{Cause, Outgoing, fact_id, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::logistics_service_client::LogisticsServiceClient;
use gendan_proto::v1::{
    DocumentSet, DocumentsReady, GetDocumentsRequest, GetPackingListRequest, Order, OrderLine,
    PackingChecked, PackingList, PackingListReady, PackingSpec, PrepareDocuments, PreparePacking,
    ProductMaster, WmsCarton, WmsPacked,
};
use gendan_tests::{Running, SubjectReader};
use tonic::transport::Channel;

/// Generous: the machine may be busy building or testing something else.
const WAIT: Duration = Duration::from_secs(30);
const CUSTOMER: &str = "Nordwind GmbH";
/// A valid EAN-13 (check digit 1).
const EAN: &str = "4006381333931";

struct Logistics {
    svc: Running,
    client: LogisticsServiceClient<Channel>,
    events: SubjectReader,
}

impl Logistics {
    /// The service with Nordwind's packing spec (24 shirts per carton, at
    /// most 20 kg) and the shirt's product data.
    async fn start() -> anyhow::Result<Self> {
        let svc = Running::start("logistics", Application::build).await?;
        let mut client = LogisticsServiceClient::connect(svc.endpoint()).await?;
        client
            .upsert_packing_spec(PackingSpec {
                customer: CUSTOMER.into(),
                default_units_per_carton: 24,
                product_rules: vec![],
                marks_template: "{customer} / ORDER {order} / C/NO {carton} OF {total}".into(),
                barcode_type: "EAN-13".into(),
                max_gross_weight_kg: 20.0,
                carton_tare_kg: 0.8,
            })
            .await?;
        client
            .upsert_product_master(ProductMaster {
                product: "shirt".into(),
                description: "Men's woven cotton shirt".into(),
                hs_code: "6205.20".into(),
                unit_net_weight_kg: 0.25,
                country_of_origin: "CN".into(),
            })
            .await?;
        let events =
            SubjectReader::open(&svc.nats.url, streams::EVENTS, "gendan.evt.logistics.>").await?;
        Ok(Logistics {
            svc,
            client,
            events,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.svc.stop().await
    }

    /// Sends a saga command.
    async fn command<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.command(order_id, payload).await.map(drop)
    }

    /// Sends a command again on purpose and waits until logistics has
    /// handled it: its answer is a fact already on the bus, under the same
    /// event id, so nothing new arrives.
    async fn repeat<M: prost::Message + TypeName>(
        &self,
        order_id: &str,
        payload: &M,
    ) -> anyhow::Result<()> {
        self.svc.repeat(order_id, payload).await
    }

    /// Publishes a warehouse packed report and returns its message id.
    async fn packed(&self, order_id: &str, cartons: Vec<WmsCarton>) -> anyhow::Result<String> {
        let report = WmsPacked {
            order_id: order_id.to_owned(),
            cartons,
            at: None,
        };
        let message = Outgoing::new(
            WMS_PACKED_SUBJECT.to_owned(),
            "test",
            order_id,
            &report,
            &Cause::root(order_id),
        );
        self.svc.bus.publish(&message).await?;
        Ok(message.event_id().to_owned())
    }

    /// The next event of type `M` about `order_id`, with its event id.
    async fn event<M: prost::Message + TypeName + Default>(
        &mut self,
        order_id: &str,
    ) -> anyhow::Result<(M, String)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let seen = self.events.next_of_type(M::TYPE_NAME, left).await?;
            let envelope = seen.envelope()?;
            if envelope.order_id == order_id {
                return Ok((seen.decode()?, envelope.event_id));
            }
        }
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.svc.pool)
            .await
            .unwrap_or(-1)
    }

    async fn statuses(&self, sql: &'static str) -> anyhow::Result<Vec<(i32, String)>> {
        Ok(sqlx::query_as::<_, (i32, String)>(sql)
            .fetch_all(&self.svc.pool)
            .await?)
    }

    async fn packing_list(&mut self, order_id: &str) -> anyhow::Result<PackingList> {
        Ok(self
            .client
            .get_packing_list(GetPackingListRequest {
                order_id: order_id.into(),
            })
            .await?
            .into_inner())
    }

    async fn documents(&mut self, order_id: &str) -> anyhow::Result<DocumentSet> {
        Ok(self
            .client
            .get_documents(GetDocumentsRequest {
                order_id: order_id.into(),
            })
            .await?
            .into_inner())
    }
}

/// An export order of `shirts` shirts at 12.50.
fn order(order_id: &str, shirts: u32) -> Order {
    Order {
        order_id: order_id.to_owned(),
        customer: CUSTOMER.into(),
        lines: vec![OrderLine {
            product: "shirt".into(),
            spec: String::new(),
            quantity: shirts,
            unit_price_minor: 1250,
        }],
        currency: "USD".into(),
        requested_delivery_date: "2026-03-25".into(),
        incoterm: "FOB".into(),
        payment_terms: "30% T/T deposit, 70% against B/L copy".into(),
        export: true,
        total_minor: i64::from(shirts) * 1250,
        ..Order::default()
    }
}

fn prepare_packing(order: &Order, revision: u32) -> PreparePacking {
    PreparePacking {
        order: Some(order.clone()),
        revision,
    }
}

fn prepare_documents(order: &Order, revision: u32) -> PrepareDocuments {
    PrepareDocuments {
        order: Some(order.clone()),
        inspection_id: "fi-2026-0042".into(),
        revision,
    }
}

/// What a careful warehouse reports for `list`.
fn packed_as_listed(list: &PackingList) -> Vec<WmsCarton> {
    list.cartons
        .iter()
        .map(|carton| WmsCarton {
            carton_number: carton.carton_number,
            product: carton.product.clone(),
            quantity: carton.quantity,
            marks: carton.marks.clone(),
            label_barcode: EAN.into(),
            gross_weight_kg: carton.gross_weight_kg,
        })
        .collect()
}

#[tokio::test]
async fn an_amended_order_is_packed_and_documented_again() -> anyhow::Result<()> {
    let mut logistics = Logistics::start().await?;
    let id = uuid::Uuid::now_v7().to_string();
    let first = order(&id, 100);
    let amended = order(&id, 160);
    let fact = |type_name: &str, key: &str| fact_id("logistics", type_name, &id, key).to_string();

    // Revision 1: 100 shirts, 24 + 24 + 24 + 24 + 4.
    logistics.command(&id, &prepare_packing(&first, 1)).await?;
    let (ready, event_id) = logistics.event::<PackingListReady>(&id).await?;
    assert_eq!((ready.cartons, ready.revision), (5, 1));
    assert_eq!(event_id, fact(PackingListReady::TYPE_NAME, "packing_list"));
    let first_list = logistics.packing_list(&id).await?;
    assert_eq!(first_list.total_cartons, 5);

    logistics
        .command(&id, &prepare_documents(&first, 1))
        .await?;
    let (documents, _) = logistics.event::<DocumentsReady>(&id).await?;
    assert_eq!((documents.documents.len(), documents.revision), (5, 1));

    // The customer amends the order to 160 shirts before it ships:
    // 6 x 24 + 16, a new list revision.
    logistics
        .command(&id, &prepare_packing(&amended, 2))
        .await?;
    let (ready, event_id) = logistics.event::<PackingListReady>(&id).await?;
    assert_eq!((ready.cartons, ready.revision), (7, 2));
    let ready_fact = fact(PackingListReady::TYPE_NAME, "packing_list#2");
    assert_eq!(event_id, ready_fact);

    // Revision 2 re-sent, and revision 1 re-sent late: both answer the
    // current list as the same fact (the same event id, so nothing new
    // reaches the bus) and build nothing.
    logistics.repeat(&id, &prepare_packing(&amended, 2)).await?;
    logistics.repeat(&id, &prepare_packing(&first, 1)).await?;
    assert_eq!(
        logistics.count("SELECT count(*) FROM packing_lists").await,
        2
    );
    assert_eq!(
        logistics
            .count("SELECT count(*) FROM packing_list_cartons")
            .await,
        5 + 7
    );
    assert_eq!(
        logistics
            .statuses("SELECT revision, status FROM packing_lists ORDER BY revision")
            .await?,
        [(1, "superseded".to_owned()), (2, "prepared".to_owned())]
    );
    let list = logistics.packing_list(&id).await?;
    assert_eq!(list.total_cartons, 7);
    assert_eq!(list.cartons.iter().map(|c| c.quantity).sum::<u32>(), 160);
    assert_eq!(
        list.cartons[6].marks,
        format!("{CUSTOMER} / ORDER {id} / C/NO 7 OF 7")
    );

    // The warehouse packed to the superseded list (work done before the
    // amendment): recorded against that list and answered with its
    // revision, which the saga counts as history; nothing is checked on
    // the current one.
    logistics.packed(&id, packed_as_listed(&first_list)).await?;
    let (checked, _) = logistics.event::<PackingChecked>(&id).await?;
    assert!(checked.matches, "{:?}", checked.mismatches);
    assert_eq!(checked.revision, 1);
    let list = logistics.packing_list(&id).await?;
    assert!(list.checks.is_empty(), "{:?}", list.checks);

    // Packed to a list of neither revision: a mismatch against the current.
    let mut short = packed_as_listed(&list);
    short.pop();
    logistics.packed(&id, short).await?;
    let (checked, event_id) = logistics.event::<PackingChecked>(&id).await?;
    assert!(!checked.matches);
    assert_eq!(checked.revision, 2);
    assert!(
        checked
            .mismatches
            .contains(&"carton count: packed 6, packing list 7".to_owned()),
        "{:?}",
        checked.mismatches
    );
    assert_eq!(
        event_id,
        fact(PackingChecked::TYPE_NAME, "packing_list#2:check#1")
    );

    // Repacked to the current list: it matches.
    let repacked = packed_as_listed(&list);
    logistics.packed(&id, repacked.clone()).await?;
    let (checked, event_id) = logistics.event::<PackingChecked>(&id).await?;
    assert!(checked.matches, "{:?}", checked.mismatches);
    assert_eq!(checked.revision, 2);
    let check_fact = fact(PackingChecked::TYPE_NAME, "packing_list#2:check#2");
    assert_eq!(event_id, check_fact);
    let list = logistics.packing_list(&id).await?;
    assert_eq!(list.status, "checked");
    assert_eq!(list.checks.len(), 2);

    // The warehouse says it again (a new message id): the same check,
    // recorded once.
    let again = logistics.packed(&id, repacked).await?;
    gendan_tests::handled(&logistics.svc.pool, &again).await?;
    assert_eq!(
        logistics.count("SELECT count(*) FROM packing_checks").await,
        3
    );

    // The documents of the amended order copy the current list.
    logistics
        .command(&id, &prepare_documents(&amended, 2))
        .await?;
    let (documents, event_id) = logistics.event::<DocumentsReady>(&id).await?;
    assert_eq!(documents.revision, 2);
    assert_eq!(
        documents.documents,
        [
            "commercial_invoice",
            "packing_list",
            "customs_declaration",
            "certificate_of_origin",
            "inspection_certificate"
        ]
    );
    assert_eq!(event_id, fact(DocumentsReady::TYPE_NAME, "documents#2"));
    let set = logistics.documents(&id).await?;
    assert_eq!(set.status, "ready");
    let packing_document = set
        .documents
        .iter()
        .find(|d| d.name == "packing_list")
        .ok_or_else(|| anyhow::anyhow!("no packing list document"))?;
    for expected in [
        r#""total_cartons":7"#,
        r#""quantity":160"#,
        r#""carton_numbers":"1-7""#,
        r#""total_net_weight_kg":40.0"#,
    ] {
        assert!(
            packing_document.content_json.contains(expected),
            "{expected} not in {}",
            packing_document.content_json
        );
    }
    let invoice = &set.documents[0].content_json;
    assert!(invoice.contains(r#""quantity":160"#), "{invoice}");
    assert!(invoice.contains(r#""total_minor":200000"#), "{invoice}");

    // A late re-send of revision 1 answers the current documents; the
    // first set stays on record, superseded.
    logistics.repeat(&id, &prepare_documents(&first, 1)).await?;
    assert_eq!(
        logistics
            .statuses("SELECT revision, status FROM document_sets ORDER BY revision")
            .await?,
        [(1, "superseded".to_owned()), (2, "ready".to_owned())]
    );
    let copied: Option<i32> =
        sqlx::query_scalar("SELECT packing_list_revision FROM document_sets WHERE revision = 2")
            .fetch_one(&logistics.svc.pool)
            .await?;
    assert_eq!(copied, Some(2));
    assert_eq!(logistics.count("SELECT count(*) FROM documents").await, 10);

    logistics.stop().await
}
