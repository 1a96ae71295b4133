//! `gendan-saga`: the saga service as its own process.
//!
//! Loads settings (`GENDAN_*` variables and the `GENDAN_CONFIG` file, see
//! `gendan-settings`), starts telemetry, and runs the service until Ctrl-C
//! or SIGTERM.

use gendan_saga::SERVICE;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = gendan_settings::ServiceSettings::from_env(SERVICE, "127.0.0.1:50053")?;
    let _telemetry = gendan_telemetry::init(SERVICE)?;
    let options = gendan_saga::Options::from_env()?;
    let application = gendan_saga::Application::build(settings, options).await?;
    tracing::info!(port = application.port(), "saga service started");
    application
        .run_until_stopped(gendan_runtime::cancel_on_shutdown())
        .await?;
    Ok(())
}
