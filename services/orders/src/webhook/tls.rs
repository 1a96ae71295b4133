//! The webhook client's TLS: rustls with the ring provider, trusting the
//! system's roots and, when `GENDAN_ORDERS__NOTICE_WEBHOOK_CA_FILE` names
//! one, the PEM certificates of an internal CA.

use std::path::Path;
use std::sync::Arc;

use crate::{Error, Result};

/// The setting naming extra CA certificates (PEM) to trust.
pub const CA_FILE_VARIABLE: &str = "GENDAN_ORDERS__NOTICE_WEBHOOK_CA_FILE";

/// The client configuration for `https://` webhooks.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    // The system's roots; a machine without any (a bare container) can
    // still reach a receiver whose CA is in `ca_file`.
    let native = rustls_native_certs::load_native_certs();
    let (added, _unusable) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(
        roots = added,
        "system TLS roots loaded for the notice webhook"
    );
    if let Some(path) = ca_file {
        let setting = |why: String| Error::Settings(format!("{CA_FILE_VARIABLE}={path:?}: {why}"));
        let pem = std::fs::read(path).map_err(|err| setting(err.to_string()))?;
        let certs = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|err| setting(format!("not PEM certificates: {err}")))?;
        if certs.is_empty() {
            return Err(setting("no certificate in it".to_owned()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|err| setting(format!("a certificate rustls refuses: {err}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Settings(format!("TLS for the notice webhook: {err}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
