//! The messaging library against real NATS and PostgreSQL: outbox relay,
//! inbox de-duplication, batches with a failing or repeated message, dead
//! letters.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::PullConsumer;
use gendan_messaging::{
    Batch, BatchFailure, Bus, Cause, Consumer, ConsumerSettings, Handler, HandlerError, Incoming,
    Outgoing, Relay, RelaySettings, Turnstile, outbox, streams,
};
use gendan_proto::v1;
use gendan_storage::DatabaseSettings;
use gendan_tests::{SubjectReader, TestDb, TestNats, eventually};
use prost::Message as _;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);

async fn setup() -> (TestDb, TestNats, PgPool, Bus) {
    gendan_telemetry::init_for_tests();
    let db = TestDb::create().await.unwrap();
    let nats = TestNats::start().await.unwrap();
    let pool = gendan_storage::connect(&DatabaseSettings {
        url: db.url.clone(),
        schema: "probe".into(),
        max_connections: 4,
    })
    .await
    .unwrap();
    gendan_storage::migrate(&pool, [gendan_messaging::migrator()])
        .await
        .unwrap();
    sqlx::query("CREATE TABLE effects (event_id TEXT NOT NULL, order_id TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let bus = Bus::connect(&nats.url, "test").await.unwrap();
    bus.ensure_streams(1).await.unwrap();
    (db, nats, pool, bus)
}

fn confirmed(order_id: &str) -> Outgoing {
    Outgoing::event(
        "orders",
        order_id,
        &v1::OrderConfirmed {
            revision: 0,
            order_id: order_id.into(),
            promised_delivery_date: "2027-01-15".into(),
        },
        &Cause::root(order_id),
    )
}

/// Records each handled message as a row, then fails on demand: every
/// message, or only those about `failing_order`.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<AtomicUsize>,
    fail_with: Option<HandlerError>,
    failing_order: Option<String>,
}

impl Handler for Recorder {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let payload: v1::OrderConfirmed = message.payload()?;
        sqlx::query("INSERT INTO effects (event_id, order_id) VALUES ($1, $2)")
            .bind(&message.envelope.event_id)
            .bind(&payload.order_id)
            .execute(conn)
            .await?;
        let fails_here = self
            .failing_order
            .as_ref()
            .is_none_or(|order_id| *order_id == payload.order_id);
        match &self.fail_with {
            Some(err) if fails_here => Err(err.clone()),
            _ => Ok(()),
        }
    }
}

fn run_consumer(
    bus: &Bus,
    pool: &PgPool,
    durable: &str,
    handler: Recorder,
    max_attempts: u32,
) -> CancellationToken {
    let mut settings = ConsumerSettings::new(streams::EVENTS, durable, "gendan.evt.orders.>");
    settings.max_attempts = max_attempts;
    settings.backoff = vec![Duration::from_millis(50)];
    let cancel = CancellationToken::new();
    let consumer = Consumer::new(bus.clone(), pool.clone(), settings, handler);
    tokio::spawn(consumer.run(cancel.clone()));
    cancel
}

async fn effects(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn stream_messages(bus: &Bus, stream: &str) -> u64 {
    bus.jetstream()
        .get_stream(stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

#[tokio::test]
async fn a_message_delivered_twice_has_one_effect() {
    let (_db, _nats, pool, bus) = setup().await;
    let handler = Recorder::default();
    let calls = handler.calls.clone();
    let cancel = run_consumer(&bus, &pool, "probe-dedup", handler, 5);

    // The same envelope under two broker message ids: JetStream keeps both,
    // the inbox keeps the effect single.
    let message = confirmed("order-1");
    publish_copies(&bus, &message, &["copy-1", "copy-2"]).await;
    assert_eq!(stream_messages(&bus, streams::EVENTS).await, 2);
    eventually(WAIT, "both deliveries handled", || async {
        (calls.load(Ordering::SeqCst) >= 1 && effects(&pool).await == 1).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(effects(&pool).await, 1);
    let inbox: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'probe-dedup'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(inbox, 1);
    cancel.cancel();
}

/// Publishes `message` once per broker message id: the stream keeps every
/// copy, as when a relay publishes a row again after the server's duplicate
/// window has passed.
async fn publish_copies(bus: &Bus, message: &Outgoing, msg_ids: &[&str]) {
    let body = message.envelope.encode_to_vec();
    for msg_id in msg_ids {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", *msg_id);
        bus.jetstream()
            .publish_with_headers(message.subject.clone(), headers, body.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// Starts a consumer once the test's messages are on the stream, so they
/// are ready together and arrive as one batch; returns the durable, to
/// read its counts, and the token that stops the consumer.
async fn consume_what_is_ready(
    bus: &Bus,
    pool: &PgPool,
    durable: &str,
    handler: Recorder,
) -> (PullConsumer, CancellationToken) {
    let settings = ConsumerSettings::new(streams::EVENTS, durable, "gendan.evt.orders.>");
    let consumer = Consumer::new(bus.clone(), pool.clone(), settings, handler);
    let durable = consumer.ensure().await.unwrap();
    let cancel = CancellationToken::new();
    tokio::spawn(consumer.run(cancel.clone()));
    (durable, cancel)
}

/// Waits until the durable has delivered the first `messages` of the
/// stream and none waits for an ack.
async fn all_settled(durable: &PullConsumer, messages: u64) {
    eventually(WAIT, "every message settled", || {
        let mut durable = durable.clone();
        async move {
            let info = durable.info().await.ok()?;
            (info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence >= messages)
                .then_some(())
        }
    })
    .await
    .unwrap();
}

async fn effects_by_order(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT order_id, count(*) FROM effects GROUP BY order_id ORDER BY order_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rejected_message_in_a_batch_is_dead_lettered_and_the_others_take_effect_once() {
    let (_db, nats, pool, bus) = setup().await;
    // The batch is sorted by order id: order-b is the middle message. Its
    // handler writes its effect before rejecting it, so the batch's
    // transaction holds a write that must not commit.
    for order_id in ["order-a", "order-b", "order-c"] {
        bus.publish(&confirmed(order_id)).await.unwrap();
    }
    let handler = Recorder {
        fail_with: Some(HandlerError::Rejected("order-b is unknown".into())),
        failing_order: Some("order-b".into()),
        ..Default::default()
    };
    let (durable, cancel) = consume_what_is_ready(&bus, &pool, "probe-middle", handler).await;
    all_settled(&durable, 3).await;

    assert_eq!(
        effects_by_order(&pool).await,
        vec![("order-a".to_owned(), 1), ("order-c".to_owned(), 1)]
    );
    let inbox: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'probe-middle'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(inbox, 2);
    let mut dead = SubjectReader::open(&nats.url, streams::DEAD_LETTERS, "gendan.dlq.probe-middle")
        .await
        .unwrap();
    let letter = dead.next(WAIT).await.unwrap().expect("a dead letter");
    assert!(
        letter
            .header("Gendan-Dlq-Reason")
            .unwrap()
            .contains("order-b is unknown")
    );
    assert_eq!(letter.envelope().unwrap().order_id, "order-b");
    assert_eq!(stream_messages(&bus, streams::DEAD_LETTERS).await, 1);
    cancel.cancel();
}

#[tokio::test]
async fn the_same_message_twice_in_one_batch_has_one_effect() {
    let (_db, _nats, pool, bus) = setup().await;
    // Both copies are on the stream before the consumer starts: one batch,
    // one claim for the two, one handler call.
    let message = confirmed("order-twice");
    publish_copies(&bus, &message, &["twice-1", "twice-2"]).await;
    assert_eq!(stream_messages(&bus, streams::EVENTS).await, 2);
    let handler = Recorder::default();
    let calls = handler.calls.clone();
    let (durable, cancel) = consume_what_is_ready(&bus, &pool, "probe-twice", handler).await;
    all_settled(&durable, 2).await;

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(effects(&pool).await, 1);
    let inbox: Vec<String> =
        sqlx::query_scalar("SELECT message_id FROM inbox WHERE consumer = 'probe-twice'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(inbox, vec![message.envelope.event_id.clone()]);
    assert_eq!(stream_messages(&bus, streams::DEAD_LETTERS).await, 0);
    cancel.cancel();
}

#[tokio::test]
async fn the_outbox_gets_an_event_out_exactly_once_across_a_relay_crash() {
    let (_db, nats, pool, bus) = setup().await;
    let message = confirmed("order-2");

    // A service commits its change and the event; its relay dies before
    // publishing anything.
    let mut tx = pool.begin().await.unwrap();
    outbox::write(&mut tx, std::slice::from_ref(&message))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // And a relay that published but died before deleting the row: the same
    // event id was already sent once.
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", message.envelope.event_id.as_str());
    bus.jetstream()
        .publish_with_headers(
            message.subject.clone(),
            headers,
            message.envelope.encode_to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    // A new relay picks the row up; the copy is dropped by the server.
    let relay = Relay::new(pool.clone(), bus.clone(), "probe", Default::default());
    let cancel = CancellationToken::new();
    tokio::spawn(relay.run(cancel.clone()));
    eventually(WAIT, "outbox drained", || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
        (left == 0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(stream_messages(&bus, streams::EVENTS).await, 1);

    let mut reader = SubjectReader::open(&nats.url, streams::EVENTS, "gendan.evt.>")
        .await
        .unwrap();
    let seen = reader.next(WAIT).await.unwrap().expect("the event");
    assert_eq!(
        seen.header("Nats-Msg-Id").as_deref(),
        Some(message.envelope.event_id.as_str())
    );
    assert_eq!(seen.envelope().unwrap(), message.envelope);

    // Later writes wake the relay through NOTIFY.
    let next = confirmed("order-3");
    let mut tx = pool.begin().await.unwrap();
    outbox::write(&mut tx, std::slice::from_ref(&next))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let seen = reader.next(WAIT).await.unwrap().expect("the second event");
    assert_eq!(seen.envelope().unwrap().order_id, "order-3");
    assert_eq!(
        seen.header("content-type").as_deref(),
        Some("application/x-protobuf")
    );
    assert_eq!(
        seen.header("Nats-Msg-Id").as_deref(),
        Some(next.envelope.event_id.as_str())
    );
    cancel.cancel();
}

#[tokio::test]
async fn undecodable_and_unknown_version_messages_are_dead_lettered_with_their_reason() {
    let (_db, nats, pool, bus) = setup().await;
    let cancel = run_consumer(&bus, &pool, "probe-dlq", Recorder::default(), 5);

    bus.jetstream()
        .publish(
            "gendan.evt.orders.garbage",
            bytes::Bytes::from_static(b"\xff\xfe not protobuf"),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let mut future = confirmed("order-4");
    future.envelope.schema_version = 99;
    bus.publish(&future).await.unwrap();

    let mut dead = SubjectReader::open(&nats.url, streams::DEAD_LETTERS, "gendan.dlq.probe-dlq")
        .await
        .unwrap();
    let first = dead.next(WAIT).await.unwrap().expect("a dead letter");
    assert_eq!(first.subject, "gendan.dlq.probe-dlq");
    assert!(
        first
            .header("Gendan-Dlq-Reason")
            .unwrap()
            .contains("undecodable envelope")
    );
    assert_eq!(
        first.header("Gendan-Dlq-Subject").as_deref(),
        Some("gendan.evt.orders.garbage")
    );
    assert_eq!(first.payload.as_ref(), b"\xff\xfe not protobuf");
    let second = dead
        .next(WAIT)
        .await
        .unwrap()
        .expect("a second dead letter");
    assert!(
        second
            .header("Gendan-Dlq-Reason")
            .unwrap()
            .contains("unsupported schema version 99")
    );
    assert_eq!(second.envelope().unwrap(), future.envelope);
    assert_eq!(effects(&pool).await, 0);
    cancel.cancel();
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_dead_lettered_after_bounded_redelivery_and_its_effects_undone()
 {
    let (_db, nats, pool, bus) = setup().await;
    let handler = Recorder {
        fail_with: Some(HandlerError::Retry("warehouse system unreachable".into())),
        ..Default::default()
    };
    let calls = handler.calls.clone();
    let cancel = run_consumer(&bus, &pool, "probe-retry", handler, 3);
    bus.publish(&confirmed("order-5")).await.unwrap();

    let mut dead = SubjectReader::open(&nats.url, streams::DEAD_LETTERS, "gendan.dlq.probe-retry")
        .await
        .unwrap();
    let letter = dead.next(WAIT).await.unwrap().expect("a dead letter");
    let reason = letter.header("Gendan-Dlq-Reason").unwrap();
    assert!(reason.contains("gave up after 3 deliveries"), "{reason}");
    assert!(reason.contains("warehouse system unreachable"), "{reason}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Each failed attempt was rolled back: no effect, no inbox entry.
    assert_eq!(effects(&pool).await, 0);
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(inbox, 0);

    // A rejected message goes at once.
    let rejecting = Recorder {
        fail_with: Some(HandlerError::Rejected("order-6 is unknown".into())),
        ..Default::default()
    };
    let rejected_calls = rejecting.calls.clone();
    let mut settings = ConsumerSettings::new(
        streams::EVENTS,
        "probe-reject",
        "gendan.evt.orders.order_confirmed",
    );
    settings.max_attempts = 5;
    let cancel_reject = CancellationToken::new();
    tokio::spawn(
        Consumer::new(bus.clone(), pool.clone(), settings, rejecting).run(cancel_reject.clone()),
    );
    let mut rejected =
        SubjectReader::open(&nats.url, streams::DEAD_LETTERS, "gendan.dlq.probe-reject")
            .await
            .unwrap();
    let letter = rejected
        .next(WAIT)
        .await
        .unwrap()
        .expect("a rejected letter");
    assert!(
        letter
            .header("Gendan-Dlq-Reason")
            .unwrap()
            .contains("order-6 is unknown")
    );
    assert_eq!(rejected_calls.load(Ordering::SeqCst), 1);
    cancel.cancel();
    cancel_reject.cancel();
}

#[tokio::test]
async fn streams_and_consumers_are_declared_idempotently_and_follow_new_settings() {
    let (_db, _nats, pool, bus) = setup().await;
    // Declaring again (every service does at start-up) changes nothing.
    bus.ensure_streams(1).await.unwrap();
    bus.ensure_streams(1).await.unwrap();
    let names: Vec<String> = {
        use futures::TryStreamExt;
        bus.jetstream().stream_names().try_collect().await.unwrap()
    };
    for stream in [
        streams::EVENTS,
        streams::COMMANDS,
        streams::EXTERNAL,
        streams::DEAD_LETTERS,
    ] {
        assert_eq!(
            names.iter().filter(|n| *n == stream).count(),
            1,
            "{names:?}"
        );
    }

    let mut settings =
        ConsumerSettings::new(streams::EVENTS, "probe-config", "gendan.evt.orders.>");
    Consumer::new(
        bus.clone(),
        pool.clone(),
        settings.clone(),
        Recorder::default(),
    )
    .ensure()
    .await
    .unwrap();
    settings.ack_wait = Duration::from_secs(42);
    let mut consumer = Consumer::new(bus.clone(), pool.clone(), settings, Recorder::default())
        .ensure()
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.config.ack_wait, Duration::from_secs(42));
    assert_eq!(info.config.filter_subject, "gendan.evt.orders.>");
}

/// Acts only on `OrderConfirmed`.
struct Picky;

impl Handler for Picky {
    fn handles(&self, message: &Incoming) -> bool {
        message.is::<v1::OrderConfirmed>()
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO effects (event_id, order_id) VALUES ($1, $2)")
            .bind(&message.envelope.event_id)
            .bind(message.order_id())
            .execute(conn)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn events_a_handler_does_not_act_on_are_acked_without_database_work() {
    let (_db, _nats, pool, bus) = setup().await;
    let settings = ConsumerSettings::new(streams::EVENTS, "probe-picky", "gendan.evt.>");
    let cancel = CancellationToken::new();
    let consumer = Consumer::new(bus.clone(), pool.clone(), settings, Picky);
    let mut info_handle = consumer.ensure().await.unwrap();
    tokio::spawn(consumer.run(cancel.clone()));

    bus.publish(&accepted("order-7")).await.unwrap();
    bus.publish(&confirmed("order-7")).await.unwrap();
    eventually(WAIT, "both acknowledged", || {
        let mut info_handle = info_handle.clone();
        async move {
            let info = info_handle.info().await.ok()?;
            (info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence >= 2)
                .then_some(())
        }
    })
    .await
    .unwrap();
    let _ = info_handle.info().await.unwrap();
    assert_eq!(effects(&pool).await, 1);
    let inbox: Vec<String> =
        sqlx::query_scalar("SELECT message_id FROM inbox WHERE consumer = 'probe-picky'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(inbox, vec![confirmed_id(&pool).await]);
    cancel.cancel();
}

async fn confirmed_id(pool: &PgPool) -> String {
    sqlx::query_scalar("SELECT event_id FROM effects")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_database_that_is_away_holds_the_batch_instead_of_spending_its_deliveries() {
    let (_db, _nats, pool, bus) = setup().await;
    // Every connection of the pool taken: the consumer's batch cannot
    // start its transaction (the pool times out after 10 s).
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.acquire().await.unwrap());
    }
    let handler = Recorder::default();
    // One delivery allowed: a failed delivery would be a dead letter.
    let cancel = run_consumer(&bus, &pool, "probe-patient", handler, 1);
    bus.publish(&confirmed("order-patient")).await.unwrap();
    // Longer than the pool's acquire timeout, so the batch has failed once.
    tokio::time::sleep(Duration::from_secs(12)).await;
    drop(held);
    eventually(
        Duration::from_secs(60),
        "handled once the database is back",
        || async { (effects(&pool).await == 1).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(stream_messages(&bus, streams::DEAD_LETTERS).await, 0);
    cancel.cancel();
}

/// Writes a whole run's effects in one statement, as the saga and the
/// timeline do; a refused statement belongs to no message in particular.
struct AllAtOnce;

impl Handler for AllAtOnce {
    async fn handle(
        &self,
        _conn: &mut PgConnection,
        _message: &Incoming,
    ) -> Result<(), HandlerError> {
        unreachable!("the consumer hands this handler whole runs")
    }

    async fn handle_batch(
        &self,
        conn: &mut PgConnection,
        batch: &Batch<'_>,
    ) -> Result<(), BatchFailure> {
        let event_ids: Vec<&str> = batch
            .messages()
            .iter()
            .map(|m| m.envelope.event_id.as_str())
            .collect();
        let order_ids: Vec<&str> = batch.messages().iter().map(|m| m.order_id()).collect();
        sqlx::query(
            "INSERT INTO effects (event_id, order_id) SELECT * FROM UNNEST($1::text[], $2::text[])",
        )
        .bind(&event_ids)
        .bind(&order_ids)
        .execute(conn)
        .await
        .map_err(|err| {
            BatchFailure::Shared(HandlerError::Rejected(format!("effects refused: {err}")))
        })?;
        Ok(())
    }
}

#[tokio::test]
async fn a_shared_statement_that_fails_finds_its_message_by_running_each_alone() {
    let (_db, nats, pool, bus) = setup().await;
    // The database refuses order-b's effect, inside the one statement that
    // writes the whole batch: no message is named by the failure.
    sqlx::query("ALTER TABLE effects ADD CONSTRAINT not_order_b CHECK (order_id <> 'order-b')")
        .execute(&pool)
        .await
        .unwrap();
    for order_id in ["order-a", "order-b", "order-c"] {
        bus.publish(&confirmed(order_id)).await.unwrap();
    }
    let settings = ConsumerSettings::new(streams::EVENTS, "probe-shared", "gendan.evt.orders.>");
    let consumer = Consumer::new(bus.clone(), pool.clone(), settings, AllAtOnce);
    let durable = consumer.ensure().await.unwrap();
    let cancel = CancellationToken::new();
    tokio::spawn(consumer.run(cancel.clone()));
    all_settled(&durable, 3).await;

    assert_eq!(
        effects_by_order(&pool).await,
        vec![("order-a".to_owned(), 1), ("order-c".to_owned(), 1)]
    );
    let mut dead = SubjectReader::open(&nats.url, streams::DEAD_LETTERS, "gendan.dlq.probe-shared")
        .await
        .unwrap();
    let letter = dead.next(WAIT).await.unwrap().expect("a dead letter");
    assert_eq!(letter.envelope().unwrap().order_id, "order-b");
    assert!(
        letter
            .header("Gendan-Dlq-Reason")
            .unwrap()
            .contains("not_order_b")
    );
    assert_eq!(stream_messages(&bus, streams::DEAD_LETTERS).await, 1);
    cancel.cancel();
}

#[tokio::test]
async fn a_consumer_with_a_turnstile_waits_its_turn_before_its_transaction() {
    let (_db, _nats, pool, bus) = setup().await;
    let turnstile = Turnstile::new();
    // Another task of the process holds the turn (a gRPC call that took
    // the same lock).
    let held = turnstile.enter().await;
    let settings = ConsumerSettings::new(streams::EVENTS, "probe-turn", "gendan.evt.orders.>");
    let consumer =
        Consumer::new(bus.clone(), pool.clone(), settings, Picky).with_turnstile(turnstile.clone());
    let durable = consumer.ensure().await.unwrap();
    let cancel = CancellationToken::new();
    tokio::spawn(consumer.run(cancel.clone()));
    bus.publish(&confirmed("order-1")).await.unwrap();

    // The message is delivered, but its run waits for the turn without a
    // transaction: nothing is written and no connection is in a transaction.
    eventually(WAIT, "message delivered", || {
        let mut durable = durable.clone();
        async move {
            let info = durable.info().await.ok()?;
            (info.num_ack_pending == 1).then_some(())
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(effects(&pool).await, 0);
    let in_transaction: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(in_transaction, 0);

    drop(held);
    all_settled(&durable, 1).await;
    assert_eq!(effects(&pool).await, 1);
    cancel.cancel();
}

#[tokio::test]
async fn the_relay_vacuums_its_outbox_as_it_takes_rows() {
    let (_db, _nats, pool, bus) = setup().await;
    let messages: Vec<Outgoing> = (0..30).map(|n| confirmed(&format!("order-{n}"))).collect();
    let mut tx = pool.begin().await.unwrap();
    outbox::write(&mut tx, &messages).await.unwrap();
    tx.commit().await.unwrap();

    let settings = RelaySettings {
        batch_size: 10,
        vacuum_every: 10,
        ..Default::default()
    };
    let relay = Relay::new(pool.clone(), bus.clone(), "probe", settings);
    let cancel = CancellationToken::new();
    tokio::spawn(relay.run(cancel.clone()));
    eventually(WAIT, "outbox drained and vacuumed", || async {
        let (left, vacuums): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox), \
               (SELECT vacuum_count FROM pg_stat_user_tables \
                WHERE schemaname = 'probe' AND relname = 'outbox')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (left == 0 && vacuums >= 1).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(stream_messages(&bus, streams::EVENTS).await, 30);
    cancel.cancel();
}

/// Answers each `OrderConfirmed` with an `OrderAccepted` written to the
/// outbox in the run's transaction; fails, after writing, for
/// `failing_order`.
#[derive(Default)]
struct Answering {
    failing_order: Option<&'static str>,
}

fn accepted(order_id: &str) -> Outgoing {
    Outgoing::event(
        "orders",
        order_id,
        &v1::OrderAccepted {
            order_id: order_id.into(),
            accepted_by: "buyer".into(),
            note: String::new(),
        },
        &Cause::root(order_id),
    )
}

impl Handler for Answering {
    fn handles(&self, message: &Incoming) -> bool {
        message.is::<v1::OrderConfirmed>()
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        message: &Incoming,
    ) -> Result<(), HandlerError> {
        outbox::write(conn, &[accepted(message.order_id())]).await?;
        if self.failing_order == Some(message.order_id()) {
            return Err(HandlerError::Rejected("refused after writing".into()));
        }
        Ok(())
    }
}

async fn outbox_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_consumer_publishes_what_its_run_wrote_without_a_relay_and_deletes_the_rows() {
    let (_db, nats, pool, bus) = setup().await;
    let settings = ConsumerSettings::new(streams::EVENTS, "probe-answering", "gendan.evt.>");
    let cancel = CancellationToken::new();
    let answering = Answering::default();
    tokio::spawn(Consumer::new(bus.clone(), pool.clone(), settings, answering).run(cancel.clone()));
    let mut reader = SubjectReader::open(
        &nats.url,
        streams::EVENTS,
        "gendan.evt.orders.order_accepted",
    )
    .await
    .unwrap();

    // No relay runs: only the consumer can get the answer out.
    bus.publish(&confirmed("order-20")).await.unwrap();
    let seen = reader.next(WAIT).await.unwrap().expect("the answer");
    let envelope = seen.envelope().unwrap();
    assert_eq!(envelope.order_id, "order-20");
    assert_eq!(
        seen.header("Nats-Msg-Id").as_deref(),
        Some(envelope.event_id.as_str())
    );
    // Its row goes once the consumer is idle.
    eventually(WAIT, "the published row deleted", || async {
        (outbox_rows(&pool).await == 0).then_some(())
    })
    .await
    .unwrap();

    // A second answer: the row of the first goes with the next run.
    bus.publish(&confirmed("order-21")).await.unwrap();
    let seen = reader.next(WAIT).await.unwrap().expect("the second answer");
    assert_eq!(seen.envelope().unwrap().order_id, "order-21");
    eventually(WAIT, "the second row deleted", || async {
        (outbox_rows(&pool).await == 0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(stream_messages(&bus, streams::EVENTS).await, 4);
    cancel.cancel();
}

#[tokio::test]
async fn rows_a_run_wrote_wait_out_their_grace_and_other_connections_rows_go_to_the_relay() {
    let (_db, nats, pool, bus) = setup().await;
    let (mine, elsewhere) = (accepted("order-30"), accepted("order-31"));

    // A run that commits and then dies before it publishes; inside it, a
    // write on another connection is not the run's to publish.
    let mut tx = pool.begin().await.unwrap();
    let mut other = pool.begin().await.unwrap();
    let connection = outbox::capture::connection_id(&tx);
    let ((), written) = outbox::capture::capturing(connection, async {
        outbox::write(&mut tx, std::slice::from_ref(&mine))
            .await
            .unwrap();
        outbox::write(&mut other, std::slice::from_ref(&elsewhere))
            .await
            .unwrap();
    })
    .await;
    tx.commit().await.unwrap();
    other.commit().await.unwrap();
    let written: Vec<&str> = written
        .iter()
        .map(|m| m.envelope.order_id.as_str())
        .collect();
    assert_eq!(written, ["order-30"]);
    let waiting: Vec<(String, bool)> =
        sqlx::query_as("SELECT subject, relay_after IS NOT NULL FROM outbox ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        waiting.iter().map(|(_, grace)| *grace).collect::<Vec<_>>(),
        [true, false]
    );

    // The relay publishes the other connection's row and leaves the run's.
    let relay = Relay::new(pool.clone(), bus.clone(), "probe", Default::default());
    let cancel = CancellationToken::new();
    tokio::spawn(relay.run(cancel.clone()));
    let mut reader = SubjectReader::open(&nats.url, streams::EVENTS, "gendan.evt.>")
        .await
        .unwrap();
    let seen = reader.next(WAIT).await.unwrap().expect("the relayed row");
    assert_eq!(seen.envelope().unwrap().order_id, "order-31");
    eventually(WAIT, "the relayed row deleted", || async {
        (outbox_rows(&pool).await == 1).then_some(())
    })
    .await
    .unwrap();

    // Once its grace is over, the run's row goes out through the relay.
    sqlx::query("UPDATE outbox SET relay_after = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    let seen = reader.next(WAIT).await.unwrap().expect("the swept row");
    assert_eq!(seen.envelope().unwrap().order_id, "order-30");
    eventually(WAIT, "outbox drained", || async {
        (outbox_rows(&pool).await == 0).then_some(())
    })
    .await
    .unwrap();
    cancel.cancel();
}

#[tokio::test]
async fn a_run_that_rolls_back_publishes_nothing_it_wrote() {
    let (_db, nats, pool, bus) = setup().await;
    // Both in the first batch: the first run writes both answers and rolls
    // back at order-40, the second writes order-41's alone and commits.
    bus.publish(&confirmed("order-40")).await.unwrap();
    bus.publish(&confirmed("order-41")).await.unwrap();
    let settings = ConsumerSettings::new(streams::EVENTS, "probe-rollback", "gendan.evt.>");
    let answering = Answering {
        failing_order: Some("order-40"),
    };
    let cancel = CancellationToken::new();
    tokio::spawn(Consumer::new(bus.clone(), pool.clone(), settings, answering).run(cancel.clone()));
    let mut reader = SubjectReader::open(
        &nats.url,
        streams::EVENTS,
        "gendan.evt.orders.order_accepted",
    )
    .await
    .unwrap();

    let seen = reader
        .next(WAIT)
        .await
        .unwrap()
        .expect("the committed answer");
    assert_eq!(seen.envelope().unwrap().order_id, "order-41");
    eventually(
        WAIT,
        "the refused message dead-lettered and the row deleted",
        || async {
            let dead = stream_messages(&bus, streams::DEAD_LETTERS).await;
            (dead == 1 && outbox_rows(&pool).await == 0).then_some(())
        },
    )
    .await
    .unwrap();
    // Two confirmations and one answer: order-40's never went out.
    assert_eq!(stream_messages(&bus, streams::EVENTS).await, 3);
    cancel.cancel();
}
