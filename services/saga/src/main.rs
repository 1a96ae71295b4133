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
    let cancel = gendan_runtime::cancel_on_shutdown();
    let metrics_addr = gendan_metrics::addr_for(SERVICE, "127.0.0.1:9103");
    let metrics_port = gendan_metrics::spawn(&metrics_addr, &cancel).await?;
    let options = gendan_saga::Options::from_env()?;
    let application = gendan_saga::Application::build(settings, options).await?;
    tracing::info!(
        port = application.port(),
        metrics_port,
        "saga service started"
    );
    application.run_until_stopped(cancel).await?;
    Ok(())
}
