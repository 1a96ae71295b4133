//! `gendan-quality`: the quality service as its own process.
//!
//! Loads settings (`GENDAN_*` variables and the `GENDAN_CONFIG` file, see
//! `gendan-settings`), starts telemetry, and runs the service until Ctrl-C
//! or SIGTERM.

use gendan_quality::SERVICE;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = gendan_settings::ServiceSettings::from_env(SERVICE, "127.0.0.1:50055")?;
    let _telemetry = gendan_telemetry::init(SERVICE)?;
    let application = gendan_quality::Application::build(settings).await?;
    tracing::info!(port = application.port(), "quality service started");
    application
        .run_until_stopped(gendan_runtime::cancel_on_shutdown())
        .await?;
    Ok(())
}
