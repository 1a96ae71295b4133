//! `gendan deadletters`: what a consumer gave up on (`GENDAN_DLQ`), with
//! the reason, and replaying one to its original subject once the cause is
//! fixed (the master data entered, the work order planned). A replayed
//! message carries its original envelope, so a consumer that handled it
//! meanwhile drops it as a duplicate.

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
    /// Publishes a dead letter's message again on its original subject.
    Replay {
        /// The dead letter's sequence in `GENDAN_DLQ` (from `list`).
        sequence: u64,
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

/// The envelope's type and order, when the body decodes as one.
fn envelope_of(payload: &[u8]) -> (String, String) {
    use prost::Message as _;
    match gendan_proto::v1::Envelope::decode(payload) {
        Ok(envelope) => (envelope.r#type, envelope.order_id),
        Err(_) => ("(not an envelope)".to_owned(), String::new()),
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
            let of = header(&message, CONSUMER);
            if consumer.is_none_or(|wanted| wanted == of) {
                let (kind, order) = envelope_of(&message.payload);
                found.push(DeadLetter {
                    sequence: message.sequence,
                    consumer: of,
                    subject: header(&message, SUBJECT),
                    r#type: kind,
                    order_id: order,
                    reason: header(&message, REASON),
                });
            }
        }
        sequence -= 1;
    }
    Ok(found)
}

/// Publishes dead letter `sequence` again on its original subject, with
/// its original headers and a new message id; returns it as listed.
pub async fn replay(
    bus: &Bus,
    stream: &async_nats::jetstream::stream::Stream,
    sequence: u64,
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
    let (kind, order) = envelope_of(&message.payload);
    Ok(DeadLetter {
        sequence,
        consumer: header(&message, CONSUMER),
        subject,
        r#type: kind,
        order_id: order,
        reason: header(&message, REASON),
    })
}

fn to_json(letter: &DeadLetter) -> Value {
    json!({
        "sequence": letter.sequence,
        "consumer": letter.consumer,
        "subject": letter.subject,
        "type": letter.r#type,
        "order_id": letter.order_id,
        "reason": letter.reason,
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
        DeadLettersCommand::Replay { sequence } => {
            let letter = replay(&bus, &stream, sequence).await?;
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
