//! `gendan deadletters`: a dead letter is listed with its reason, shown in
//! full, and replayed, with its original bytes, to the subject it came
//! from, the replay announced for the order's timeline.

use std::time::Duration;

use gendan::deadletters;
use gendan_messaging::{Bus, Cause, Outgoing, streams};
use gendan_proto::v1::{DeadLetterReplayed, MesQuantityReported};
use gendan_tests::{SubjectReader, TestNats};
use prost::Message as _;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_dead_letter_is_listed_with_its_reason_and_replayed_to_its_subject() -> anyhow::Result<()>
{
    gendan_telemetry::init_for_tests();
    let nats = TestNats::start().await?;
    let bus = Bus::connect(&nats.url, "test").await?;
    bus.ensure_streams(1).await?;

    let original = Outgoing::new(
        "gendan.ext.mes.quantity_reported".to_owned(),
        "mes:line-3",
        "o-dlq",
        &MesQuantityReported {
            order_id: "o-dlq".into(),
            product: "shirt".into(),
            stage: "sewing".into(),
            good: 10,
            scrap: 0,
            at: None,
        },
        &Cause::root("o-dlq"),
    );
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Gendan-Dlq-Reason",
        "unknown order \"o-dlq\": it has no work order",
    );
    headers.insert("Gendan-Dlq-Subject", original.subject.as_str());
    headers.insert("Gendan-Dlq-Consumer", "production-mes");
    headers.insert("Nats-Msg-Id", "dlq:production-mes:7");
    bus.jetstream()
        .publish_with_headers(
            "gendan.dlq.production-mes",
            headers,
            original.envelope.encode_to_vec().into(),
        )
        .await?
        .await?;

    let mut stream = bus.jetstream().get_stream(streams::DEAD_LETTERS).await?;
    let listed = deadletters::list(&mut stream, None, 10).await?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let letter = &listed[0];
    assert_eq!(letter.consumer, "production-mes");
    assert_eq!(letter.subject, "gendan.ext.mes.quantity_reported");
    assert_eq!(letter.r#type, "gendan.v1.MesQuantityReported");
    assert_eq!(letter.order_id, "o-dlq");
    assert!(letter.reason.contains("no work order"), "{}", letter.reason);
    assert!(
        deadletters::list(&mut stream, Some("logistics-wms"), 10)
            .await?
            .is_empty()
    );

    let (shown, headers, bytes) = deadletters::show(&stream, letter.sequence).await?;
    assert_eq!(&shown, letter);
    assert_eq!(shown.event_id, original.envelope.event_id);
    assert_eq!(bytes, original.envelope.encoded_len());
    assert!(
        headers
            .iter()
            .any(|(name, value)| name == "Gendan-Dlq-Consumer" && value == "production-mes"),
        "{headers:?}"
    );

    let mut external =
        SubjectReader::open(&nats.url, streams::EXTERNAL, "gendan.ext.mes.>").await?;
    let mut operations =
        SubjectReader::open(&nats.url, streams::EVENTS, "gendan.evt.operations.>").await?;
    let replayed = deadletters::replay(&bus, &stream, letter.sequence, "ops:test").await?;
    assert_eq!(replayed.subject, "gendan.ext.mes.quantity_reported");
    let seen = external
        .next(WAIT)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the replay did not arrive"))?;
    assert_eq!(seen.envelope()?.event_id, original.envelope.event_id);
    assert!(seen.header("Gendan-Dlq-Reason").is_none());
    // The order's timeline hears who replayed what, and why it had failed.
    let announced: DeadLetterReplayed = operations
        .next_of_type("gendan.v1.DeadLetterReplayed", WAIT)
        .await?
        .decode()?;
    assert_eq!(
        (
            announced.order_id.as_str(),
            announced.sequence,
            announced.event_id.as_str(),
            announced.consumer.as_str(),
            announced.replayed_by.as_str()
        ),
        (
            "o-dlq",
            letter.sequence,
            original.envelope.event_id.as_str(),
            "production-mes",
            "ops:test"
        )
    );
    assert!(
        announced.reason.contains("no work order"),
        "{}",
        announced.reason
    );
    assert!(
        deadletters::replay(&bus, &stream, 9_999, "ops:test")
            .await
            .is_err()
    );
    Ok(())
}
