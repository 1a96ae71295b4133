//! What the bench reads from JetStream: the sagas' `SagaCompleted` events
//! as they come (the closed loop's signal that an order is done), the saga
//! step latencies after the run (each saga command's store time against
//! the store time of the event that caused it), and the messages stored in
//! gendan's streams (before and after, for messages per order).
//!
//! Every reader is an ephemeral consumer without acks, starting at the
//! run's start time, so the bench leaves nothing durable behind.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use gendan_messaging::{Bus, streams};
use gendan_proto::TypeName;
use gendan_proto::v1::{self, Envelope};
use prost::Message as _;

/// `SagaCompleted` events from `since` on.
pub(super) async fn completions(
    bus: &Bus,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<pull::Stream> {
    let subject = format!(
        "gendan.evt.saga.{}",
        gendan_messaging::subjects::token_for_type(v1::SagaCompleted::TYPE_NAME)
    );
    let consumer = ephemeral(bus, streams::EVENTS, &subject, since).await?;
    Ok(consumer.messages().await?)
}

async fn ephemeral(
    bus: &Bus,
    stream: &str,
    subject: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<async_nats::jetstream::consumer::PullConsumer> {
    let start = time::OffsetDateTime::from_unix_timestamp(since.timestamp())?;
    let stream = bus.jetstream().get_stream(stream).await?;
    Ok(stream
        .create_consumer(pull::Config {
            filter_subject: subject.to_owned(),
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::ByStartTime { start_time: start },
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await?)
}

/// Event stored → the command it caused stored, for every saga command;
/// sorted.
pub(super) async fn step_latencies(
    bus: &Bus,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<Duration>> {
    let events = read_all(bus, streams::EVENTS, "gendan.evt.>", since).await?;
    let stored: HashMap<String, time::OffsetDateTime> = events
        .into_iter()
        .map(|(envelope, at)| (envelope.event_id, at))
        .collect();
    let commands = read_all(bus, streams::COMMANDS, "gendan.cmd.>", since).await?;
    let mut latencies: Vec<Duration> = commands
        .into_iter()
        .filter(|(envelope, _)| envelope.source == "saga")
        .filter_map(|(envelope, at)| {
            let cause = stored.get(&envelope.causation_id)?;
            let gap = at - *cause;
            Duration::try_from(gap).ok()
        })
        .collect();
    latencies.sort();
    Ok(latencies)
}

async fn read_all(
    bus: &Bus,
    stream: &str,
    subject: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<(Envelope, time::OffsetDateTime)>> {
    let consumer = ephemeral(bus, stream, subject, since).await?;
    let pending = consumer.cached_info().num_pending as usize;
    let mut messages = consumer.messages().await?;
    let mut out = Vec::with_capacity(pending);
    // Counted apart from what decodes: a foreign message on the stream must
    // not leave the loop waiting for one more that never comes.
    let mut read = 0;
    while read < pending {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), messages.next()).await
        else {
            break;
        };
        read += 1;
        let message = message.map_err(|err| anyhow::anyhow!("{err}"))?;
        let published = message
            .info()
            .map(|info| info.published)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        if let Ok(envelope) = Envelope::decode(message.payload.as_ref()) {
            out.push((envelope, published));
        }
    }
    Ok(out)
}

/// Messages held by gendan's streams (dead letters not counted).
pub(super) async fn stream_messages(bus: &Bus) -> anyhow::Result<u64> {
    let mut total = 0;
    for name in [
        streams::EVENTS,
        streams::COMMANDS,
        streams::EXTERNAL,
        streams::NOTICES,
    ] {
        let mut stream = bus.jetstream().get_stream(name).await?;
        total += stream.info().await?.state.messages;
    }
    Ok(total)
}
