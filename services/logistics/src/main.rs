//! `gendan-logistics`: the logistics service as its own process.
//!
//! Loads settings (`GENDAN_*` variables and the `GENDAN_CONFIG` file, see
//! `gendan-settings`), starts telemetry, and runs the service until Ctrl-C
//! or SIGTERM.

use gendan_logistics::SERVICE;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = gendan_settings::ServiceSettings::from_env(SERVICE, "127.0.0.1:50056")?;
    let _telemetry = gendan_telemetry::init(SERVICE)?;
    let application = gendan_logistics::Application::build(settings).await?;
    tracing::info!(port = application.port(), "logistics service started");
    application
        .run_until_stopped(gendan_runtime::cancel_on_shutdown())
        .await?;
    Ok(())
}
