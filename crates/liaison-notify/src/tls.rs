//! Trust anchors and the rustls client configuration (ring provider, certificates verified).

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::ConfigError;

/// The certificates of a PEM file of extra roots; at least one is required.
pub(crate) fn read_ca_file(field: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let problem = |problem: String| ConfigError::CaFile {
        field,
        path: path.to_path_buf(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| problem(format!("cannot be read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(format!("is not a PEM file of certificates: {e}")))?;
    if certs.is_empty() {
        return Err(problem(
            "holds no certificate (expected one or more -----BEGIN CERTIFICATE----- blocks)".to_owned(),
        ));
    }
    Ok(certs)
}

/// A client configuration trusting the system's roots plus `extra` (ring provider, TLS 1.2/1.3).
pub(crate) fn client_config(
    field: &'static str,
    path: Option<&Path>,
    extra: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped, as every TLS client does; an empty system
    // store still leaves the extra roots.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    for cert in extra {
        roots.add(cert.clone()).map_err(|e| ConfigError::CaFile {
            field,
            path: path.map(Path::to_path_buf).unwrap_or_default(),
            problem: format!("holds a certificate that cannot be a trust anchor: {e}"),
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// True for the host names that plaintext is allowed to: the loopback names.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip == std::net::Ipv4Addr::LOCALHOST || ip == std::net::Ipv6Addr::LOCALHOST,
        Err(_) => false,
    }
}
