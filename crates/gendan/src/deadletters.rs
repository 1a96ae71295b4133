//! `gendan deadletters`: what a consumer gave up on (`GENDAN_DLQ`), with
//! the reason; one of them in full (`show`); and replaying one to its
//! original subject once the cause is
//! fixed (the master data entered, the work order planned). A replayed
//! message carries its original envelope, so a consumer that handled it
//! meanwhile drops it as a duplicate. A replay is announced as
//! `DeadLetterReplayed` about the message's order, so the order's timeline
//! says who replayed what and why it had failed.

use anyhow::Context;
use clap::Subcommand;
use gendan_messaging::{Bus, streams};
use serde_json::{Value, json};

use crate::cli::{Output, dash, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Dead letters, newest first.
    List {
        /// Only those of one durable consumer (`production-mes`, ...).
        #[arg(long)]
        consumer: Option<String>,
        /// At most this many (1..=1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One dead letter in full: its reason, headers and envelope.
    Show {
        /// The dead letter's sequence in `GENDAN_DLQ` (from `list`).
        sequence: u64,
    },
    /// Publishes a dead letter's message again on its original subject.
    Replay {
        /// The dead letter's sequence in `GENDAN_DLQ` (from `list`).
        sequence: u64,
        /// Who replays it, for the order's timeline (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

const REASON: &str = "Gendan-Dlq-Reason";
const SUBJECT: &str = "Gendan-Dlq-Subject";
const CONSUMER: &str = "Gendan-Dlq-Consumer";

fn header(message: &async_nats::jetstream::message::StreamMessage, name: &str) -> String {
    message
        .headers
        .get(name)
        .map(|value| value.as_str().to_owned())
        .unwrap_or_default()
}

/// The envelope's type, order and event id, when the body decodes as one.
fn envelope_of(payload: &[u8]) -> (String, String, String) {
    use prost::Message as _;
    match gendan_proto::v1::Envelope::decode(payload) {
        Ok(envelope) => (envelope.r#type, envelope.order_id, envelope.event_id),
        Err(_) => ("(not an envelope)".to_owned(), String::new(), String::new()),
    }
}

/// One dead letter as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub sequence: u64,
    pub consumer: String,
    pub subject: String,
    pub r#type: String,
    pub order_id: String,
    pub reason: String,
    /// The message's own event id ("" when it is not an envelope).
    pub event_id: String,
}

impl DeadLetter {
    fn of(message: &async_nats::jetstream::message::StreamMessage) -> Self {
        let (kind, order_id, event_id) = envelope_of(&message.payload);
        DeadLetter {
            sequence: message.sequence,
            consumer: header(message, CONSUMER),
            subject: header(message, SUBJECT),
            r#type: kind,
            order_id,
            reason: header(message, REASON),
            event_id,
        }
    }
}

/// The newest `limit` dead letters (of `consumer`, when given).
pub async fn list(
    stream: &mut async_nats::jetstream::stream::Stream,
    consumer: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<DeadLetter>> {
    let (first, last) = {
        let state = &stream.info().await?.state;
        (state.first_sequence, state.last_sequence)
    };
    let mut found = Vec::new();
    let mut sequence = last;
    while sequence >= first && sequence > 0 && found.len() < limit {
        // A deleted message leaves a gap: skip it.
        if let Ok(message) = stream.get_raw_message(sequence).await {
            let letter = DeadLetter::of(&message);
            if consumer.is_none_or(|wanted| wanted == letter.consumer) {
                found.push(letter);
            }
        }
        sequence -= 1;
    }
    Ok(found)
}

/// Dead letter `sequence` with every header it carries (name, value).
pub async fn show(
    stream: &async_nats::jetstream::stream::Stream,
    sequence: u64,
) -> anyhow::Result<(DeadLetter, Vec<(String, String)>, usize)> {
    let message = stream
        .get_raw_message(sequence)
        .await
        .with_context(|| format!("no dead letter {sequence} in {}", streams::DEAD_LETTERS))?;
    let mut headers: Vec<(String, String)> = message
        .headers
        .iter()
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |value| (name.to_string(), value.as_str().to_owned()))
        })
        .collect();
    headers.sort();
    Ok((DeadLetter::of(&message), headers, message.payload.len()))
}

/// Publishes dead letter `sequence` again on its original subject, with
/// its original headers and a new message id, and announces the replay
/// (`DeadLetterReplayed`, by `replayed_by`) for the order's timeline;
/// returns it as listed.
pub async fn replay(
    bus: &Bus,
    stream: &async_nats::jetstream::stream::Stream,
    sequence: u64,
    replayed_by: &str,
) -> anyhow::Result<DeadLetter> {
    let message = stream
        .get_raw_message(sequence)
        .await
        .with_context(|| format!("no dead letter {sequence} in {}", streams::DEAD_LETTERS))?;
    let subject = header(&message, SUBJECT);
    anyhow::ensure!(
        !subject.is_empty(),
        "dead letter {sequence} does not name its original subject"
    );
    // The original headers (trace context, content type) go with it; the
    // dead-letter ones stay behind, and the message id is new so the
    // stream's duplicate window does not swallow the replay.
    let mut headers = async_nats::HeaderMap::new();
    for (name, values) in message.headers.iter() {
        let name = name.to_string();
        if name.starts_with("Gendan-Dlq-") || name == "Nats-Msg-Id" {
            continue;
        }
        if let Some(value) = values.first() {
            headers.insert(name.as_str(), value.as_str());
        }
    }
    let replay_id = format!("replay:{sequence}:{}", uuid::Uuid::now_v7());
    headers.insert("Nats-Msg-Id", replay_id.as_str());
    bus.jetstream()
        .publish_with_headers(subject.clone(), headers, message.payload.clone())
        .await?
        .await
        .with_context(|| format!("replaying dead letter {sequence} to {subject}"))?;
    let letter = DeadLetter::of(&message);
    if !letter.order_id.is_empty() {
        let replayed = gendan_proto::v1::DeadLetterReplayed {
            order_id: letter.order_id.clone(),
            sequence,
            subject: letter.subject.clone(),
            r#type: letter.r#type.clone(),
            event_id: letter.event_id.clone(),
            consumer: letter.consumer.clone(),
            reason: letter.reason.clone(),
            replayed_by: replayed_by.to_owned(),
        };
        let cause = gendan_messaging::Cause::root(&letter.order_id);
        let event =
            gendan_messaging::Outgoing::event("operations", &letter.order_id, &replayed, &cause);
        bus.publish(&event)
            .await
            .with_context(|| format!("announcing the replay of dead letter {sequence}"))?;
    }
    Ok(letter)
}

fn to_json(letter: &DeadLetter) -> Value {
    json!({
        "sequence": letter.sequence,
        "consumer": letter.consumer,
        "subject": letter.subject,
        "type": letter.r#type,
        "order_id": letter.order_id,
        "reason": letter.reason,
        "event_id": letter.event_id,
    })
}

pub async fn deadletters(command: DeadLettersCommand, output: Output) -> anyhow::Result<()> {
    let common = gendan_settings::Common::from_env()?;
    let bus = Bus::connect(&common.nats_url, "gendan-cli").await?;
    let mut stream = bus
        .jetstream()
        .get_stream(streams::DEAD_LETTERS)
        .await
        .with_context(|| format!("opening stream {}", streams::DEAD_LETTERS))?;
    match command {
        DeadLettersCommand::List { consumer, limit } => {
            anyhow::ensure!(
                (1..=1000).contains(&limit),
                "--limit must be between 1 and 1000, not {limit}"
            );
            let letters = list(&mut stream, consumer.as_deref(), limit as usize).await?;
            match output {
                Output::Json => print_json(&Value::Array(letters.iter().map(to_json).collect())),
                Output::Table => print_table(
                    &["seq", "consumer", "subject", "type", "order", "reason"],
                    letters
                        .iter()
                        .map(|letter| {
                            vec![
                                letter.sequence.to_string(),
                                letter.consumer.clone(),
                                letter.subject.clone(),
                                letter.r#type.clone(),
                                dash(&letter.order_id),
                                letter.reason.clone(),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        DeadLettersCommand::Show { sequence } => {
            let (letter, headers, bytes) = show(&stream, sequence).await?;
            let mut shown = to_json(&letter);
            shown["payload_bytes"] = json!(bytes);
            shown["headers"] = Value::Array(
                headers
                    .iter()
                    .map(|(name, value)| json!(format!("{name}: {value}")))
                    .collect(),
            );
            match output {
                Output::Json => print_json(&shown),
                Output::Table => crate::cli::print_pairs(&shown),
            }
        }
        DeadLettersCommand::Replay { sequence, by } => {
            let by = by
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "operator".to_owned());
            let letter = replay(&bus, &stream, sequence, &by).await?;
            match output {
                Output::Json => print_json(&to_json(&letter)),
                Output::Table => crate::cli::print_pairs(&json!({
                    "replayed": letter.sequence, "to": letter.subject, "type": letter.r#type,
                    "order_id": letter.order_id,
                })),
            }
        }
    }
    Ok(())
}
