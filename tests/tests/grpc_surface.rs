//! Every service port answers gRPC reflection (listing its service and the
//! health service) and `grpc.health.v1` with SERVING — what `grpcurl list`
//! and a Kubernetes gRPC probe see.

use gendan_tests::{TestDb, TestNats, service_settings};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn channel(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn listed_services(port: u16) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel(port).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses
        .message()
        .await
        .unwrap()
        .expect("a reflection answer");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn health(port: u16, service: &str) -> i32 {
    let mut client = HealthClient::new(channel(port).await);
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test]
async fn every_port_serves_reflection_and_health() {
    gendan_telemetry::init_for_tests();
    let db = TestDb::create().await.unwrap();
    let nats = TestNats::start().await.unwrap();
    let common = service_settings(&db, &nats, "unused").common;
    let stack = gendan::stack::Stack::start(
        &common,
        &gendan::stack::Addrs::ephemeral(),
        Default::default(),
    )
    .await
    .unwrap();
    let services = [
        ("orders", "gendan.v1.OrderService"),
        ("production", "gendan.v1.ProductionService"),
        ("saga", "gendan.v1.SagaService"),
        ("procurement", "gendan.v1.ProcurementService"),
        ("quality", "gendan.v1.QualityService"),
        ("logistics", "gendan.v1.LogisticsService"),
        ("finance", "gendan.v1.FinanceService"),
    ];
    assert_eq!(
        stack
            .ports()
            .filter(|(name, _)| *name != gendan::stack::BOARD)
            .count(),
        services.len(),
        "every gRPC service runs in the stack"
    );
    // Beside them the web board, on HTTP.
    let board = stack.board_url().expect("the stack serves the board");
    assert!(board.starts_with("http://127.0.0.1:"), "{board}");
    for (name, service) in services {
        let port = stack.port(name);
        let listed = listed_services(port).await;
        assert!(
            listed.iter().any(|s| s == service),
            "{service} not listed on :{port}: {listed:?}"
        );
        assert!(
            listed.iter().any(|s| s == "grpc.health.v1.Health"),
            "health not listed on :{port}: {listed:?}"
        );
        // Only what this port serves: no other department's service.
        let others: Vec<&String> = listed
            .iter()
            .filter(|s| s.starts_with("gendan.v1.") && *s != service)
            .collect();
        assert!(others.is_empty(), "{others:?} listed on :{port} ({name})");
        assert_eq!(
            health(port, "").await,
            ServingStatus::Serving as i32,
            "overall health on :{port}"
        );
        assert_eq!(
            health(port, service).await,
            ServingStatus::Serving as i32,
            "{service} health"
        );
    }
    stack.shutdown().await.unwrap();
}
