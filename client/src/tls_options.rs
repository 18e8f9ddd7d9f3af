//! TLS settings ([`TlsOptions`]): which roots verify the server, the name to
//! verify and send as SNI, and the "dangerous" no-verification mode. The
//! rustls [`ClientConfig`] is built once per kind of options and shared.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::resolve::parse_ip_literal;

/// ALPN protocol list offered on every TLS connection.
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Building a [`TlsOptions`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The PEM input could not be parsed.
    Pem(rustls::pki_types::pem::Error),
    /// The PEM input contained no `CERTIFICATE` section.
    NoCertificates,
    /// A certificate from the PEM input was rejected as a trust anchor.
    BadCertificate(rustls::Error),
    /// rustls refused the configuration.
    Rustls(rustls::Error),
    /// The host (or the server-name override) is neither a valid DNS name
    /// nor an IP address.
    InvalidServerName(String),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pem(e) => write!(f, "invalid PEM: {e}"),
            Self::NoCertificates => f.write_str("PEM input contains no CERTIFICATE section"),
            Self::BadCertificate(e) => write!(f, "unusable root certificate: {e}"),
            Self::Rustls(e) => write!(f, "invalid TLS configuration: {e}"),
            Self::InvalidServerName(n) => write!(f, "invalid TLS server name {n:?}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Pem(e) => Some(e),
            Self::BadCertificate(e) | Self::Rustls(e) => Some(e),
            Self::NoCertificates | Self::InvalidServerName(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verification {
    WebPkiRoots,
    CustomRoots,
    Disabled,
    CustomConfig,
}

/// How HTTPS connections verify servers. Cheap to clone: the rustls
/// [`ClientConfig`] is built once and shared (which also lets TLS sessions
/// be resumed across connections made with the same options).
///
/// * [`TlsOptions::default()`]: verify against the Mozilla roots bundled in
///   `webpki-roots` (the config is built once per process).
/// * [`TlsOptions::with_root_pem`]: verify against your own CA certificates
///   (private CAs, tests).
/// * [`TlsOptions::server_name_override`]: verify (and send as SNI) another
///   name than the URL's host.
/// * [`TlsOptions::dangerous_disable_verification`]: accept any certificate.
///
/// ALPN always offers exactly `http/1.1`.
#[derive(Clone)]
pub struct TlsOptions {
    config: Arc<ClientConfig>,
    verification: Verification,
    server_name_override: Option<String>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("verification", &self.verification)
            .field("server_name_override", &self.server_name_override)
            .finish_non_exhaustive()
    }
}

impl Default for TlsOptions {
    fn default() -> Self {
        static WEBPKI: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        let config = WEBPKI.get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            build_config(ConfigKind::Roots(roots))
                .expect("the ring provider supports the safe default protocol versions")
        });
        Self {
            config: Arc::clone(config),
            verification: Verification::WebPkiRoots,
            server_name_override: None,
        }
    }
}

impl TlsOptions {
    /// Same as [`TlsOptions::default()`]: verify against the bundled
    /// `webpki-roots` Mozilla root store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies servers against the CA certificates in `pem` (one or more
    /// `-----BEGIN CERTIFICATE-----` sections; other sections are ignored)
    /// instead of the bundled roots.
    ///
    /// # Errors
    /// [`TlsConfigError::Pem`] if the PEM is malformed,
    /// [`TlsConfigError::NoCertificates`] if it holds no certificate,
    /// [`TlsConfigError::BadCertificate`] if a certificate cannot be a trust
    /// anchor.
    pub fn with_root_pem(pem: &[u8]) -> Result<Self, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(TlsConfigError::Pem)?;
            roots.add(cert).map_err(TlsConfigError::BadCertificate)?;
        }
        if roots.is_empty() {
            return Err(TlsConfigError::NoCertificates);
        }
        Ok(Self {
            config: build_config(ConfigKind::Roots(roots)).map_err(TlsConfigError::Rustls)?,
            verification: Verification::CustomRoots,
            server_name_override: None,
        })
    }

    /// Uses a caller-built rustls configuration as is (client certificates,
    /// custom verifiers, other crypto providers...). The caller is
    /// responsible for its ALPN list; it should offer `http/1.1` only, since
    /// the client speaks nothing else.
    pub fn from_client_config(config: Arc<ClientConfig>) -> Self {
        Self {
            config,
            verification: Verification::CustomConfig,
            server_name_override: None,
        }
    }

    /// Verifies the server certificate against `name` instead of the URL's
    /// host, and sends `name` as SNI. `name` is a DNS name or an IP address
    /// (validated when a connection is made: see
    /// [`server_name`](Self::server_name)).
    pub fn server_name_override(mut self, name: impl Into<String>) -> Self {
        self.server_name_override = Some(name.into());
        self
    }

    /// **Dangerous**: accepts any server certificate for any name, so a
    /// man-in-the-middle can read and alter all traffic. Handshake signatures
    /// are still checked (the server must hold the key of the certificate it
    /// presents), but the certificate itself is trusted blindly. Only for
    /// development against self-signed servers. Replaces any root store.
    pub fn dangerous_disable_verification(mut self) -> Self {
        static DANGEROUS: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        let config = DANGEROUS.get_or_init(|| {
            build_config(ConfigKind::NoVerification)
                .expect("the ring provider supports the safe default protocol versions")
        });
        self.config = Arc::clone(config);
        self.verification = Verification::Disabled;
        self
    }

    /// Whether [`dangerous_disable_verification`](Self::dangerous_disable_verification)
    /// is in effect.
    pub fn is_verification_disabled(&self) -> bool {
        self.verification == Verification::Disabled
    }

    /// Whether connections made with `self` may carry requests made with
    /// `other`: the same rustls configuration (roots, verification) and the
    /// same name override. Options from separate `with_root_pem` calls are
    /// different even for the same PEM (a connection is never reused across
    /// TLS settings: curl's CONNREUSE rules).
    pub(crate) fn same_settings(&self, other: &TlsOptions) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
            && self.verification == other.verification
            && self.server_name_override == other.server_name_override
    }

    /// The shared rustls configuration (cloning the `Arc` is cheap).
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name to verify and send as SNI for a connection to `host`: the
    /// override if set, else `host` (brackets around IPv6 literals are
    /// stripped; IP addresses are verified against IP SANs and sent without
    /// SNI).
    ///
    /// # Errors
    /// [`TlsConfigError::InvalidServerName`] if the name is neither a DNS name
    /// nor an IP address.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsConfigError> {
        server_name_of(self.server_name_override.as_deref().unwrap_or(host))
    }
}

/// Whether a TLS connection to `host` under `options` (the defaults when
/// `None`) has a valid server name: checked when a request is made, so a bad
/// one is refused at once instead of failing a connection later.
pub(crate) fn check_server_name(
    options: Option<&TlsOptions>,
    host: &str,
) -> Result<(), TlsConfigError> {
    let name = options
        .and_then(|o| o.server_name_override.as_deref())
        .unwrap_or(host);
    server_name_of(name).map(drop)
}

fn server_name_of(name: &str) -> Result<ServerName<'static>, TlsConfigError> {
    if let Some(ip) = parse_ip_literal(name) {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_owned())
        .map_err(|_| TlsConfigError::InvalidServerName(name.to_owned()))
}

enum ConfigKind {
    Roots(RootCertStore),
    NoVerification,
}

pub(crate) fn ring_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

fn build_config(kind: ConfigKind) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = ring_provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let mut config = match kind {
        ConfigKind::Roots(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
        ConfigKind::NoVerification => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// Accepts every certificate and name, but still verifies handshake
/// signatures with the provider's algorithms (as rustls' examples do).
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
