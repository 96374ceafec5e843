//! TLS for a listener: the rustls server configuration built from PEM
//! files. The reactor drives each connection's `rustls::ServerConnection`
//! on the non-blocking socket itself.

use std::sync::Arc;

/// Builds the rustls server config from PEM files (certificate chain and
/// PKCS#8, PKCS#1 or SEC1 key). Errors name the file; `what` names the
/// configuration field (e.g. `manage.tls`).
pub fn load(what: &str, cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what}.cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{what}.cert {}: no certificate found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{what}.key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{what}: certificate and key do not work together: {e}"))?;
    Ok(Arc::new(cfg))
}
