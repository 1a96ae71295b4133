//! `gendan-procurement`: the procurement service as its own process.

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = gendan_settings::ServiceSettings::from_env("procurement", "127.0.0.1:50054")?;
    let _telemetry = gendan_telemetry::init(gendan_procurement::SERVICE)?;
    let application = gendan_procurement::Application::build(settings).await?;
    tracing::info!(port = application.port(), "procurement service started");

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
