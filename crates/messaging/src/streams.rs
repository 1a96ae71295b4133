//! Stream declarations, created or updated idempotently at start-up.
//!
//! All streams use file storage and a two-minute de-duplication window keyed
//! on `Nats-Msg-Id`. Replication comes from `GENDAN_STREAM_REPLICAS`
//! (1 on a laptop, 3 on a cluster).

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::{Error, Result, subjects};

pub const EVENTS: &str = "GENDAN_EVT";
pub const COMMANDS: &str = "GENDAN_CMD";
pub const EXTERNAL: &str = "GENDAN_EXT";
pub const DEAD_LETTERS: &str = "GENDAN_DLQ";
pub const NOTICES: &str = "GENDAN_NOTIFY";

const DAY: Duration = Duration::from_secs(24 * 3600);

fn definitions(replicas: usize) -> Vec<stream::Config> {
    let define = |name: &str, subject: &str, max_age: Duration| stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age,
        duplicate_window: Duration::from_secs(120),
        num_replicas: replicas,
        ..Default::default()
    };
    vec![
        define(EVENTS, subjects::EVENTS, 90 * DAY),
        define(COMMANDS, subjects::COMMANDS, 30 * DAY),
        define(EXTERNAL, subjects::EXTERNAL, 30 * DAY),
        define(DEAD_LETTERS, subjects::DEAD_LETTERS, 365 * DAY),
        define(NOTICES, subjects::NOTICES, 30 * DAY),
    ]
}

/// Creates the gendan streams, or brings existing ones to this configuration.
pub async fn ensure(js: &jetstream::Context, replicas: usize) -> Result<()> {
    for config in definitions(replicas) {
        let name = config.name.clone();
        match js.get_stream(&name).await {
            Ok(_) => {
                js.update_stream(config)
                    .await
                    .map_err(|err| Error::jetstream(format!("update stream {name}"), err))?;
            }
            Err(_) => {
                // Another process may have created it in between; the
                // get-or-create call settles that race.
                js.get_or_create_stream(config)
                    .await
                    .map_err(|err| Error::jetstream(format!("create stream {name}"), err))?;
            }
        }
    }
    Ok(())
}
