//! `gendan-board`: the merchandiser's web board as its own process.
//!
//! Loads settings (`GENDAN_BOARD__*`, `GENDAN_NATS_URL` and the
//! `GENDAN_CONFIG` file, see `gendan_board::settings`), starts telemetry,
//! and serves the board until Ctrl-C or SIGTERM.

use gendan_board::SERVICE;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = gendan_board::Settings::from_env()?;
    let _telemetry = gendan_telemetry::init(SERVICE)?;
    let application = gendan_board::Application::build(settings).await?;
    tracing::info!(port = application.port(), "board started");
    application
        .run_until_stopped(gendan_runtime::cancel_on_shutdown())
        .await?;
    Ok(())
}
