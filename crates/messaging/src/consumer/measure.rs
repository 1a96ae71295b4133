//! What a consumer records about its batches (docs/metrics.md): how big
//! each was, how long it took, how much the consumer still has to read, and
//! how each message was settled.

use std::time::Instant;

use async_nats::jetstream::Message;

/// One batch being measured, from its arrival to its last settlement.
pub(super) struct Batch<'a> {
    durable: &'a str,
    started: Instant,
}

impl<'a> Batch<'a> {
    /// Records the batch's size and the consumer's lag after it (the
    /// pending count JetStream reports with its last message).
    pub(super) fn arrived(durable: &'a str, messages: &[Message]) -> Self {
        metrics::histogram!("gendan_consumer_batch_size", "consumer" => durable.to_owned())
            .record(messages.len() as f64);
        if let Some(info) = messages.last().and_then(|message| message.info().ok()) {
            metrics::gauge!("gendan_consumer_pending", "consumer" => durable.to_owned())
                .set(info.pending as f64);
        }
        Batch {
            durable,
            started: Instant::now(),
        }
    }

    /// Records how long the batch took, once every message is settled.
    pub(super) fn settled(self) {
        metrics::histogram!("gendan_consumer_batch_seconds", "consumer" => self.durable.to_owned())
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// Counts one message settled as `outcome` (`handled`, `retried`,
/// `dead_lettered`).
pub(super) fn settled(durable: &str, outcome: &'static str) {
    metrics::counter!(
        "gendan_consumer_messages_total",
        "consumer" => durable.to_owned(),
        "outcome" => outcome,
    )
    .increment(1);
}
