//! Building envelopes for outgoing messages and reading incoming ones.
//!
//! An [`Outgoing`] is the subject, the [`Envelope`] and the trace context of
//! the span that produced it. An [`Incoming`] is a decoded envelope plus the
//! delivery facts a handler may need (subject, redelivery count, trace).

use chrono::{DateTime, Utc};
use gendan_proto::v1::Envelope;
use gendan_proto::{TypeName, timestamp_from, timestamp_to};
use prost::Message;
use uuid::Uuid;

use crate::consumer::HandlerError;
use crate::subjects;

/// Payload schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// What caused a message: the message it answers (if any) and the workflow it
/// belongs to.
#[derive(Debug, Clone, Default)]
pub struct Cause {
    pub causation_id: String,
    pub correlation_id: String,
}

impl Cause {
    /// A first cause (a gRPC request, an operator action): correlation is the
    /// given id (the order id for an order's workflow).
    pub fn root(correlation_id: impl Into<String>) -> Self {
        Cause {
            causation_id: String::new(),
            correlation_id: correlation_id.into(),
        }
    }

    /// Caused by `incoming`, in the same workflow.
    pub fn from_incoming(incoming: &Incoming) -> Self {
        let correlation = if incoming.envelope.correlation_id.is_empty() {
            incoming.envelope.order_id.clone()
        } else {
            incoming.envelope.correlation_id.clone()
        };
        Cause {
            causation_id: incoming.envelope.event_id.clone(),
            correlation_id: correlation,
        }
    }
}

/// A message ready for the outbox or a direct publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub envelope: Envelope,
    pub traceparent: Option<String>,
}

impl Outgoing {
    /// A domain event `gendan.evt.<service>.<event>`.
    pub fn event<M: Message + TypeName>(
        service: &str,
        order_id: &str,
        payload: &M,
        cause: &Cause,
    ) -> Self {
        let subject = subjects::event(service, &subjects::token_for_type(M::TYPE_NAME));
        Self::new(subject, service, order_id, payload, cause)
    }

    /// A command to `service`: `gendan.cmd.<service>.<command>`.
    pub fn command<M: Message + TypeName>(
        source: &str,
        service: &str,
        order_id: &str,
        payload: &M,
        cause: &Cause,
    ) -> Self {
        let subject = subjects::command(service, &subjects::token_for_type(M::TYPE_NAME));
        Self::new(subject, source, order_id, payload, cause)
    }

    /// Any subject; the trace context is the current span's.
    pub fn new<M: Message + TypeName>(
        subject: String,
        source: &str,
        order_id: &str,
        payload: &M,
        cause: &Cause,
    ) -> Self {
        Self::at(subject, source, order_id, payload, cause, Utc::now())
    }

    /// Like [`new`](Self::new) with an explicit occurred-at time (simulated
    /// clocks, external systems reporting the past).
    pub fn at<M: Message + TypeName>(
        subject: String,
        source: &str,
        order_id: &str,
        payload: &M,
        cause: &Cause,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        let envelope = Envelope {
            event_id: Uuid::now_v7().to_string(),
            r#type: M::TYPE_NAME.to_owned(),
            order_id: order_id.to_owned(),
            occurred_at: Some(timestamp_from(occurred_at)),
            source: source.to_owned(),
            causation_id: cause.causation_id.clone(),
            correlation_id: cause.correlation_id.clone(),
            schema_version: SCHEMA_VERSION,
            payload: payload.encode_to_vec(),
        };
        Outgoing {
            subject,
            envelope,
            traceparent: gendan_telemetry::current_traceparent(),
        }
    }

    pub fn event_id(&self) -> &str {
        &self.envelope.event_id
    }

    /// A domain event stating one fact, named by `key` (the stored record
    /// it announces: a booking reference, an invoice number, a work order
    /// and revision). Its event id is derived from the source, the event
    /// type, the order and the key, so announcing the same fact again — the
    /// answer to a re-sent command, a relay after a crash — carries the same
    /// id, and every consumer's inbox drops the repeat (DESIGN §4, "a fact
    /// has one identity").
    pub fn fact<M: Message + TypeName>(
        service: &str,
        order_id: &str,
        payload: &M,
        cause: &Cause,
        key: &str,
    ) -> Self {
        let mut outgoing = Self::event(service, order_id, payload, cause);
        outgoing.envelope.event_id = fact_id(service, M::TYPE_NAME, order_id, key).to_string();
        outgoing
    }
}

/// The namespace of fact ids (a fixed, random UUID: changing it would give
/// every fact a new identity).
const FACT_NAMESPACE: Uuid = Uuid::from_u128(0x6a1c_47e2_93b5_4d0e_8f21_c4a7_5e90_d3b8);

/// The event id of the fact `key` of `type_name` about `order_id` from
/// `service`.
pub fn fact_id(service: &str, type_name: &str, order_id: &str, key: &str) -> Uuid {
    let name = format!("{service}\u{1f}{type_name}\u{1f}{order_id}\u{1f}{key}");
    Uuid::new_v5(&FACT_NAMESPACE, name.as_bytes())
}

/// A received, decoded message.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub subject: String,
    pub envelope: Envelope,
    pub traceparent: Option<String>,
    /// 1 on first delivery.
    pub delivered: u64,
    pub stream_sequence: u64,
}

impl Incoming {
    pub fn type_name(&self) -> &str {
        &self.envelope.r#type
    }

    pub fn order_id(&self) -> &str {
        &self.envelope.order_id
    }

    /// The order a message is about: the payload's order id when it names
    /// one, else the envelope's. A message about no order is rejected (it
    /// will never be handled).
    pub fn order_id_or(&self, payload_order_id: &str) -> Result<String, HandlerError> {
        let order_id = match payload_order_id.trim() {
            "" => self.order_id().trim(),
            named => named,
        };
        if order_id.is_empty() {
            return Err(HandlerError::Rejected(format!(
                "{} without an order id",
                self.type_name()
            )));
        }
        Ok(order_id.to_owned())
    }

    pub fn is<M: TypeName>(&self) -> bool {
        self.envelope.r#type == M::TYPE_NAME
    }

    /// When the producer says it happened (falls back to now when missing).
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.envelope
            .occurred_at
            .as_ref()
            .and_then(timestamp_to)
            .unwrap_or_else(Utc::now)
    }

    /// Decodes the payload as `M`; a type mismatch or bad bytes reject the
    /// message (it goes to the dead-letter subject, it will never decode).
    pub fn payload<M: Message + TypeName + Default>(&self) -> Result<M, HandlerError> {
        if self.envelope.r#type != M::TYPE_NAME {
            return Err(HandlerError::Rejected(format!(
                "expected payload type {} but the envelope says {}",
                M::TYPE_NAME,
                self.envelope.r#type
            )));
        }
        M::decode(self.envelope.payload.as_slice()).map_err(|err| {
            HandlerError::Rejected(format!("undecodable {} payload: {err}", M::TYPE_NAME))
        })
    }
}

/// Why an envelope is refused before any handler sees it.
/// The envelope in `bytes`, or why a consumer dead-letters it (it does not
/// decode, or lacks what every message must carry): the first thing every
/// consumer does with a message, and what the fuzz program feeds.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, String> {
    let envelope = Envelope::decode(bytes).map_err(|err| format!("undecodable envelope: {err}"))?;
    check_envelope(&envelope)?;
    Ok(envelope)
}

pub(crate) fn check_envelope(envelope: &Envelope) -> Result<(), String> {
    if envelope.schema_version == 0 || envelope.schema_version > SCHEMA_VERSION {
        return Err(format!(
            "unsupported schema version {} of {} (this build reads 1..={SCHEMA_VERSION})",
            envelope.schema_version, envelope.r#type
        ));
    }
    if envelope.event_id.is_empty() {
        return Err("envelope has no event_id".to_owned());
    }
    if envelope.r#type.is_empty() {
        return Err("envelope has no type".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gendan_proto::v1;

    fn incoming(order_id: &str) -> Incoming {
        let outgoing = Outgoing::event(
            "orders",
            order_id,
            &v1::OrderConfirmed::default(),
            &Cause::root(order_id),
        );
        Incoming {
            subject: outgoing.subject,
            envelope: outgoing.envelope,
            traceparent: None,
            delivered: 1,
            stream_sequence: 1,
        }
    }

    #[test]
    fn the_payload_order_id_wins_and_a_message_about_no_order_is_rejected() {
        assert_eq!(
            incoming("o-env").order_id_or(" o-payload ").unwrap(),
            "o-payload"
        );
        assert_eq!(incoming("o-env").order_id_or("  ").unwrap(), "o-env");
        assert!(
            matches!(incoming("").order_id_or(""), Err(HandlerError::Rejected(reason)) if reason.contains("without an order id"))
        );
    }

    #[test]
    fn unknown_schema_versions_are_refused() {
        let mut envelope = incoming("o").envelope;
        assert!(check_envelope(&envelope).is_ok());
        envelope.schema_version = SCHEMA_VERSION + 1;
        assert!(
            check_envelope(&envelope)
                .unwrap_err()
                .contains("unsupported schema version")
        );
        envelope.schema_version = 0;
        assert!(check_envelope(&envelope).is_err());
    }

    #[test]
    fn a_fact_announced_twice_has_one_identity() {
        let cause = Cause::root("o-1");
        let payload = gendan_proto::v1::ShipmentBooked::default();
        let first = Outgoing::fact("logistics", "o-1", &payload, &cause, "BK-1");
        let again = Outgoing::fact("logistics", "o-1", &payload, &Cause::root("x"), "BK-1");
        assert_eq!(first.event_id(), again.event_id());
        let other = Outgoing::fact("logistics", "o-1", &payload, &cause, "BK-2");
        assert_ne!(first.event_id(), other.event_id());
        let elsewhere = Outgoing::fact("finance", "o-1", &payload, &cause, "BK-1");
        assert_ne!(first.event_id(), elsewhere.event_id());
        assert!(Uuid::parse_str(first.event_id()).is_ok());
    }
}
