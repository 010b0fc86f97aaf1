//! The identity a client certificate carries: Kubernetes reads the subject's
//! common name as the user and each organisation as a group.

use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The user name: the certificate subject's common name.
    pub user: String,
    /// The groups: the certificate subject's organisations, in order.
    pub groups: Vec<String>,
}

/// Why a certificate carries no usable identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The DER could not be parsed as an X.509 certificate.
    #[error("client certificate is not valid X.509: {0}")]
    Malformed(String),
    /// The subject has no common name.
    #[error("client certificate subject has no common name (CN), so it names no user")]
    NoCommonName,
}

impl Identity {
    /// Reads the identity from a DER certificate (the leaf a TLS peer presented).
    pub fn from_der(der: &CertificateDer<'_>) -> Result<Self, IdentityError> {
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| IdentityError::Malformed(e.to_string()))?;
        let subject = cert.subject();
        let user = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or(IdentityError::NoCommonName)?
            .to_owned();
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect();
        Ok(Self { user, groups })
    }

    /// Whether this identity is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (groups: {})", self.user, self.groups.join(","))
    }
}
