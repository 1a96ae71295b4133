//! `gendan-finance`: the finance service as its own process.

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = gendan_settings::ServiceSettings::from_env("finance", "127.0.0.1:50057")?;
    let _telemetry = gendan_telemetry::init(gendan_finance::SERVICE)?;
    let application = gendan_finance::Application::build(settings).await?;
    tracing::info!(port = application.port(), "finance service started");

    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    application.run_until_stopped(cancel).await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM from an orchestrator.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
