//! A connection to NATS with its JetStream context, shared by every loop of a
//! process (one connection per process, never per message).

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use prost::Message as _;

use crate::envelope::Outgoing;
use crate::{Error, Result, streams};

#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").finish_non_exhaustive()
    }
}

impl Bus {
    /// Connects as `name` (shown by `nats server report connections`).
    /// Connects to `url`: one server, or a cluster's servers separated by
    /// commas (`nats://a:4222,nats://b:4222`), which the client fails over
    /// between.
    pub async fn connect(url: &str, name: &str) -> Result<Self> {
        let servers = servers(url);
        let client = async_nats::ConnectOptions::new()
            .name(name)
            .connect(servers)
            .await
            .map_err(|source| Error::Connect {
                url: url.to_owned(),
                source,
            })?;
        Ok(Self::from_client(client))
    }

    pub fn from_client(client: async_nats::Client) -> Self {
        let jetstream = jetstream::new(client.clone());
        Self { client, jetstream }
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// Declares the streams (idempotent).
    pub async fn ensure_streams(&self, replicas: usize) -> Result<()> {
        streams::ensure(&self.jetstream, replicas).await
    }

    /// Publishes straight to JetStream and waits for the server's ack.
    ///
    /// For producers outside a service transaction (external-system adapters,
    /// simulators, tools); services publish through their outbox instead.
    pub async fn publish(&self, message: &Outgoing) -> Result<()> {
        let publish = publication(
            &message.subject,
            &message.envelope.event_id,
            message.envelope.encode_to_vec().into(),
            message.traceparent.as_deref(),
        );
        let ack = self
            .jetstream
            .send_publish(message.subject.clone(), publish)
            .await
            .map_err(|err| Error::jetstream(format!("publish to {}", message.subject), err))?;
        ack.await
            .map_err(|err| Error::jetstream(format!("publish to {}", message.subject), err))?;
        Ok(())
    }
}

/// A JetStream publication with the standard gendan headers.
pub(crate) fn publication(
    _subject: &str,
    message_id: &str,
    body: bytes::Bytes,
    traceparent: Option<&str>,
) -> PublishMessage {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/x-protobuf");
    if let Some(traceparent) = traceparent {
        headers.insert("traceparent", traceparent);
    }
    PublishMessage::build()
        .payload(body)
        .headers(headers)
        .message_id(message_id)
}

/// The servers of a `GENDAN_NATS_URL`: comma-separated, blanks ignored.
pub fn servers(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod servers_tests {
    use super::servers;

    #[test]
    fn a_cluster_is_a_comma_separated_list() {
        assert_eq!(servers("nats://127.0.0.1:4222"), ["nats://127.0.0.1:4222"]);
        assert_eq!(
            servers("nats://a:4222, nats://b:4222,,"),
            ["nats://a:4222", "nats://b:4222"]
        );
    }
}
