//! `gendan-saga`: the saga coordinator as its own process.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings =
        gendan_settings::ServiceSettings::from_env(gendan_saga::SERVICE, "127.0.0.1:50053")?;
    let _telemetry = gendan_telemetry::init("gendan-saga")?;
    let app = gendan_saga::Application::build(settings, Default::default())
        .await
        .context("starting the saga coordinator")?;
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    app.run_until_stopped(cancel).await?;
    Ok(())
}

async fn shutdown_on_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    cancel.cancel();
}
