//! Certificates minted at test time with rcgen (ECDSA P-256, ring), and rustls
//! configurations built from them.
//!
//! [`TestCa`] holds a CA and certificates it signed: a good leaf (SANs
//! `localhost`, `127.0.0.1`, `::1`), a leaf whose only SAN is `wrong.example`
//! (wrong-host-name tests) and an expired leaf. [`untrusted_self_signed`]
//! gives a self-signed certificate no test client trusts (bad-certificate
//! tests). All rustls configurations use the ring provider explicitly and
//! advertise ALPN `http/1.1`.

use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// SANs of the good leaf certificate.
pub const LEAF_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The only SAN of [`TestCa::wrong_name_cert_pem`].
pub const WRONG_NAME: &str = "wrong.example";

/// A certificate (PEM) and its private key (PKCS#8 PEM).
#[derive(Debug, Clone)]
pub struct CertAndKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl CertAndKey {
    /// A rustls server configuration serving this certificate (ALPN http/1.1).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        server_config_from_pem(&self.cert_pem, &self.key_pem)
    }
}

/// A test certificate authority and certificates it signed.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate, PEM: what clients should trust.
    pub ca_pem: String,
    /// Leaf certificate signed by the CA, SANs [`LEAF_SANS`], PEM.
    pub leaf_cert_pem: String,
    /// The leaf's private key, PKCS#8 PEM.
    pub leaf_key_pem: String,
    /// Leaf signed by the CA whose only SAN is [`WRONG_NAME`], PEM.
    pub wrong_name_cert_pem: String,
    /// Private key of [`TestCa::wrong_name_cert_pem`], PKCS#8 PEM.
    pub wrong_name_key_pem: String,
    /// Leaf signed by the CA with SANs [`LEAF_SANS`], valid only in 2000, PEM.
    pub expired_cert_pem: String,
    /// Private key of [`TestCa::expired_cert_pem`], PKCS#8 PEM.
    pub expired_key_pem: String,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// Mints a fresh CA and its leaves (about a millisecond with ring).
    pub fn new() -> TestCa {
        let ca_key = KeyPair::generate().expect("generate CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pollhttp test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |sans: &[&str], expired: bool| -> CertAndKey {
            let key = KeyPair::generate().expect("generate leaf key");
            let mut params =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .expect("leaf params");
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, sans[0]);
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.use_authority_key_identifier_extension = true;
            if expired {
                params.not_before = rcgen::date_time_ymd(2000, 1, 1);
                params.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
            let cert = params.signed_by(&key, &issuer).expect("sign leaf");
            CertAndKey {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            }
        };
        let good = leaf(&LEAF_SANS, false);
        let wrong = leaf(&[WRONG_NAME], false);
        let expired = leaf(&LEAF_SANS, true);
        TestCa {
            ca_pem: ca_cert.pem(),
            leaf_cert_pem: good.cert_pem,
            leaf_key_pem: good.key_pem,
            wrong_name_cert_pem: wrong.cert_pem,
            wrong_name_key_pem: wrong.key_pem,
            expired_cert_pem: expired.cert_pem,
            expired_key_pem: expired.key_pem,
        }
    }

    /// One CA shared by the whole test process (used by [`crate::nginx`]), so
    /// a single client configuration trusts every server.
    pub fn shared() -> &'static TestCa {
        static CA: OnceLock<TestCa> = OnceLock::new();
        CA.get_or_init(TestCa::new)
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA PEM")
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der()).expect("add CA to root store");
        roots
    }

    /// The good leaf and its key.
    pub fn leaf(&self) -> CertAndKey {
        CertAndKey {
            cert_pem: self.leaf_cert_pem.clone(),
            key_pem: self.leaf_key_pem.clone(),
        }
    }

    /// The `wrong.example` leaf and its key.
    pub fn wrong_name(&self) -> CertAndKey {
        CertAndKey {
            cert_pem: self.wrong_name_cert_pem.clone(),
            key_pem: self.wrong_name_key_pem.clone(),
        }
    }

    /// The expired leaf and its key.
    pub fn expired(&self) -> CertAndKey {
        CertAndKey {
            cert_pem: self.expired_cert_pem.clone(),
            key_pem: self.expired_key_pem.clone(),
        }
    }

    /// Server configuration with the good leaf (TLS 1.2 + 1.3, ALPN http/1.1).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.leaf().server_config()
    }

    /// Server configuration with the `wrong.example` leaf.
    pub fn wrong_name_server_config(&self) -> Arc<ServerConfig> {
        self.wrong_name().server_config()
    }

    /// Server configuration with the expired leaf.
    pub fn expired_server_config(&self) -> Arc<ServerConfig> {
        self.expired().server_config()
    }

    /// Client configuration trusting only this CA (TLS 1.2 + 1.3, ALPN
    /// http/1.1, ring provider).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut cfg = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

/// The ring crypto provider (the workspace builds rustls without a default).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed leaf (SANs [`LEAF_SANS`]) that no [`TestCa`] trusts.
pub fn untrusted_self_signed() -> CertAndKey {
    let ck = rcgen::generate_simple_self_signed(
        LEAF_SANS.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
    .expect("self-signed cert");
    CertAndKey {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
    }
}

/// Server configuration serving a fresh [`untrusted_self_signed`] certificate.
pub fn untrusted_server_config() -> Arc<ServerConfig> {
    untrusted_self_signed().server_config()
}

/// Server configuration from a PEM certificate chain (leaf first) and a PEM
/// private key: ring provider, TLS 1.2 + 1.3, no client auth, ALPN http/1.1.
pub fn server_config_from_pem(cert_chain_pem: &str, key_pem: &str) -> Arc<ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("private key PEM");
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate and key");
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// A client configuration trusting only the CA certificates in `ca_pem`
/// (ring provider, TLS 1.2 + 1.3, ALPN http/1.1).
pub fn client_config_trusting(ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(der.expect("CA PEM")).expect("add CA");
    }
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}
