//! TLS for federation: a self-signed server certificate made at `liaison init`, and a client
//! that accepts exactly one certificate per peer, pinned by its SHA-256 fingerprint.

use super::FedError;
use liaison_wire::Hash256;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;

pub const CERT_FILE: &str = "tls-cert.der";
pub const KEY_FILE: &str = "tls-key.der";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Writes `bytes` to a new file readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), FedError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(|e| FedError::io(path, e))?;
    f.write_all(bytes).map_err(|e| FedError::io(path, e))?;
    f.sync_all().map_err(|e| FedError::io(path, e))
}

/// Generates a self-signed certificate for `names` into `dir`; returns its SHA-256 fingerprint.
pub fn generate_cert(dir: &Path, names: Vec<String>) -> Result<Hash256, FedError> {
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| FedError::Tls(e.to_string()))?;
    let der = ck.cert.der().to_vec();
    write_private(&dir.join(KEY_FILE), &ck.key_pair.serialize_der())?;
    std::fs::write(dir.join(CERT_FILE), &der).map_err(|e| FedError::io(&dir.join(CERT_FILE), e))?;
    Ok(Hash256::digest(&der))
}

/// The server side: plain TLS 1.3/1.2 with the node's certificate (no client certificates:
/// envelopes are signed).
pub fn server_config(dir: &Path) -> Result<(rustls::ServerConfig, Hash256), FedError> {
    let cert = std::fs::read(dir.join(CERT_FILE)).map_err(|e| FedError::io(&dir.join(CERT_FILE), e))?;
    let key = std::fs::read(dir.join(KEY_FILE)).map_err(|e| FedError::io(&dir.join(KEY_FILE), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(KEY_FILE);
        let mode = std::fs::metadata(&path)
            .map_err(|e| FedError::io(&path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(FedError::Tls(format!(
                "{} is readable or writable by group or others; run `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
    }
    let fp = Hash256::digest(&cert);
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| FedError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .map_err(|e| FedError::Tls(e.to_string()))?;
    Ok((cfg, fp))
}

/// Accepts exactly the certificate whose SHA-256 is pinned; Web PKI is not consulted.
#[derive(Debug)]
struct PinnedCert {
    fingerprint: Hash256,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Hash256::digest(end_entity.as_ref());
        if got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "peer certificate {got} does not match the pinned fingerprint {}",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client configuration that accepts only the server presenting the certificate with
/// this SHA-256 fingerprint (the one pinned from the peer's signed descriptor).
pub fn pinned_client_config(fingerprint: Hash256) -> Result<rustls::ClientConfig, FedError> {
    let provider = provider();
    Ok(rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| FedError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCert { fingerprint, provider }))
        .with_no_client_auth())
}
