//! `gendan-orders`: the orders service as its own process.
//!
//! Loads settings from the environment (`GENDAN_*`, see `gendan-settings`),
//! starts telemetry, and runs the service until Ctrl-C or SIGTERM.

use gendan_orders::{Application, SERVICE};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = gendan_settings::ServiceSettings::from_env(SERVICE, "127.0.0.1:50051")?;
    let _telemetry = gendan_telemetry::init(SERVICE)?;
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "orders service started");

    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            cancel.cancel();
        }
    });
    app.run_until_stopped(cancel).await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM from an orchestrator.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
