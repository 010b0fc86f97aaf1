//! PEM files and rustls configurations.
//!
//! Both sides speak TLS 1.3 only, with ALPN `h2` (gRPC), and authenticate
//! each other with certificates from the one cluster CA: a server requires a
//! client certificate and verifies it against the CA; a client verifies the
//! server's certificate and its name (DNS name or IP address) against the CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// Everything that can go wrong loading or issuing certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A certificate file holds no PEM certificate, or a malformed one.
    #[error("{path} holds no valid PEM certificate: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file holds no PEM private key, or a malformed one.
    #[error("{path} holds no valid PEM private key: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificate/key combination.
    #[error("invalid TLS configuration ({what}): {reason}")]
    Config {
        /// Which configuration.
        what: &'static str,
        /// rustls's reason.
        reason: String,
    },
    /// More than one group was asked for in one certificate.
    #[error(
        "certificate for {user} asks for groups {groups:?}; a Capstan certificate carries at most one group"
    )]
    TooManyGroups {
        /// The user.
        user: String,
        /// The groups asked for.
        groups: Vec<String>,
    },
    /// Key or certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(rcgen::Error),
}

/// Where a component finds its TLS material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    /// The cluster CA certificate (PEM).
    pub ca: PathBuf,
    /// This component's certificate (PEM; the leaf first, chain may follow).
    pub cert: PathBuf,
    /// This component's private key (PEM, PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// Parsed TLS material: the CA, the certificate chain and the private key.
#[derive(Debug)]
pub struct TlsBundle {
    /// The trusted cluster CA certificates.
    pub ca: Vec<CertificateDer<'static>>,
    /// This component's certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// This component's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsBundle {
    fn clone(&self) -> Self {
        Self {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

pub(crate) fn read_file(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Writes `contents` to `path` with `mode`, via a temporary file and a rename
/// so a crash never leaves a half-written key behind.
pub(crate) fn write_private(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let err = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Parses every certificate in a PEM text; `path` only names it in errors.
pub fn parse_certs_pem(pem: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::BadCertificate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PkiError::BadCertificate {
            path: path.to_owned(),
            reason: "no CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

/// Parses the private key in a PEM text; `path` only names it in errors.
pub fn parse_key_pem(pem: &str, path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::BadKey {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

impl TlsPaths {
    /// The conventional file names in a PKI directory: `ca.crt`, `NAME.crt`, `NAME.key`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Self {
            ca: dir.join("ca.crt"),
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        }
    }

    /// Reads and parses the three files, naming the file at fault on error.
    pub fn load(&self) -> Result<TlsBundle, PkiError> {
        Ok(TlsBundle {
            ca: parse_certs_pem(&read_file(&self.ca)?, &self.ca)?,
            chain: parse_certs_pem(&read_file(&self.cert)?, &self.cert)?,
            key: parse_key_pem(&read_file(&self.key)?, &self.key)?,
        })
    }
}

impl TlsBundle {
    /// Builds a bundle from PEM texts held in memory (tests, `capstan up`).
    pub fn from_pem(ca: &str, cert: &str, key: &str) -> Result<Self, PkiError> {
        let here = Path::new("<memory>");
        Ok(Self {
            ca: parse_certs_pem(ca, here)?,
            chain: parse_certs_pem(cert, here)?,
            key: parse_key_pem(key, here)?,
        })
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, PkiError> {
        let mut roots = RootCertStore::empty();
        for ca in &self.ca {
            roots.add(ca.clone()).map_err(|e| PkiError::Config {
                what: "CA certificate",
                reason: e.to_string(),
            })?;
        }
        Ok(Arc::new(roots))
    }

    /// A TLS 1.3-only server configuration that requires a client certificate
    /// issued by the cluster CA.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider.clone())
            .build()
            .map_err(|e| PkiError::Config {
                what: "client certificate verifier",
                reason: e.to_string(),
            })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| PkiError::Config {
                what: "server protocol versions",
                reason: e.to_string(),
            })?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| PkiError::Config {
                what: "server certificate and key",
                reason: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A TLS 1.3-only client configuration that presents this bundle's
    /// certificate and trusts only the cluster CA.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, PkiError> {
        let provider = Arc::new(ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| PkiError::Config {
                what: "client protocol versions",
                reason: e.to_string(),
            })?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| PkiError::Config {
                what: "client certificate and key",
                reason: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}
