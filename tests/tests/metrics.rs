//! The metrics endpoint after an order went through every service: the
//! gRPC counters moved by the calls made, with their codes; the consumers
//! counted what they handled and their batches; the relays sampled the
//! outbox backlog and the database pools; the saga counted its orders by
//! phase and status. Its own test binary, so its
//! process-wide registry holds only what this test did.

use gendan::sim::{self, SimOptions};
use gendan_proto::v1;
use gendan_tests::eventually;
use gendan_tests::world::{WAIT, wait_closed, world_on};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The body of `GET /metrics` on `port`.
async fn scrape(port: u16) -> String {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the metrics endpoint answers");
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("the request is sent");
    let mut response = String::new();
    socket
        .read_to_string(&mut response)
        .await
        .expect("the response is read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The value of the series `name` whose labels include every one of
/// `labels`, summed over the series that match.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((series_name, rest)) => (series_name, rest),
                None => (series, ""),
            };
            let matches = series_name == name
                && labels
                    .iter()
                    .all(|(key, wanted)| series_labels.contains(&format!("{key}=\"{wanted}\"")));
            matches.then(|| value.parse().ok())?
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_endpoint_counts_requests_messages_and_backlog() {
    let cancel = CancellationToken::new();
    let port = gendan_metrics::spawn("127.0.0.1:0", &cancel)
        .await
        .expect("the metrics endpoint");
    let world = world_on(SimOptions::default(), None).await;
    let mut orders = world.clients.orders.clone();

    let order = orders
        .create_order(sim::sample_order(5, "metrics", 0))
        .await
        .expect("an order")
        .into_inner()
        .order
        .expect("the order");
    let refused = orders
        .create_order(v1::CreateOrderRequest {
            client_request_id: "metrics-bad".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("an order without lines");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    wait_closed(&world.clients, &order.order_id).await;

    // The relays sample every ten seconds: once the order is closed, the
    // saga's outbox drains and its consumer has read everything.
    let text = eventually(WAIT, "the outbox drained and the lag gone", || async move {
        let text = scrape(port).await;
        let drained = value(&text, "gendan_outbox_backlog", &[("service", "saga")]) == Some(0.0);
        let read_all = value(
            &text,
            "gendan_consumer_pending",
            &[("consumer", "saga-events")],
        ) == Some(0.0);
        (drained && read_all).then_some(text)
    })
    .await
    .expect("the relays' and consumers' gauges");

    let create = |code| {
        value(
            &text,
            "gendan_grpc_requests_total",
            &[
                ("service", "gendan.v1.OrderService"),
                ("method", "CreateOrder"),
                ("code", code),
            ],
        )
    };
    assert!(create("OK").is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(create("InvalidArgument"), Some(1.0), "{text}");
    assert!(
        value(
            &text,
            "gendan_grpc_request_duration_seconds_count",
            &[("method", "CreateOrder")]
        )
        .is_some_and(|n| n >= 2.0),
        "{text}"
    );
    // The saga handled every event of the order's story.
    let handled = value(
        &text,
        "gendan_consumer_messages_total",
        &[("consumer", "saga-events"), ("outcome", "handled")],
    );
    assert!(handled.is_some_and(|n| n >= 20.0), "{handled:?}");
    assert!(
        value(
            &text,
            "gendan_consumer_batch_size_count",
            &[("consumer", "saga-events")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    for service in ["orders", "production", "finance"] {
        // Every service holds at least one connection (its relay's listener).
        let connections = value(&text, "gendan_db_pool_connections", &[("service", service)]);
        assert!(
            connections.is_some_and(|n| n >= 1.0),
            "{service}: {connections:?}"
        );
        assert!(
            value(
                &text,
                "gendan_outbox_oldest_seconds",
                &[("service", service)]
            )
            .is_some(),
            "no outbox gauge for {service}"
        );
    }
    // The saga's gauges, sampled every fifteen seconds: the order counted
    // where it ended.
    let sagas = eventually(WAIT, "the closed order counted", || async move {
        let text = scrape(port).await;
        value(&text, "gendan_saga_orders", &[("status", "completed")])
            .filter(|n| *n >= 1.0)
            .map(|_| text)
    })
    .await
    .expect("the saga's gauges");
    assert_eq!(value(&sagas, "gendan_saga_open_decisions", &[]), Some(0.0));
    assert!(value(&sagas, "gendan_saga_timers_due", &[]).is_some());
    cancel.cancel();
    world.stop().await;
}
