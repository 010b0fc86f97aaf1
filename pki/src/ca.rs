//! The cluster certificate authority: generate, save, load, and issue
//! certificates.
//!
//! Keys are ECDSA P-256. A certificate's subject carries a Kubernetes-style
//! identity: the common name is the user (`system:node:worker-1`), each
//! organisation is a group (`system:nodes`). Server certificates carry the
//! DNS names and IP addresses they are reached at as subject alternative names.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::time::Duration;

use time::OffsetDateTime;

use crate::tls::{PkiError, read_file, write_private};

/// The common name of every Capstan CA certificate.
const CA_COMMON_NAME: &str = "capstan-ca";

/// What a certificate may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// TLS server authentication only.
    Server,
    /// TLS client authentication only.
    Client,
    /// Both: a replica's peer certificate, which serves and dials.
    ServerAndClient,
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
}

/// The cluster CA: its certificate and the key that signs with it.
pub struct CertificateAuthority {
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl CertificateAuthority {
    /// Generates a new CA valid for `valid_for` from now (minus a minute of clock skew).
    pub fn generate(valid_for: Duration) -> Result<Self, PkiError> {
        let key = KeyPair::generate().map_err(PkiError::Generate)?;
        let mut params = ca_params();
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + time::Duration::try_from(valid_for).unwrap_or(time::Duration::MAX);
        let cert = params.self_signed(&key).map_err(PkiError::Generate)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Loads a CA saved by [`save`](Self::save): `ca.crt` and `ca.key` in `dir`.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let cert_pem = read_file(&dir.join("ca.crt"))?;
        let key_path = dir.join("ca.key");
        let key_pem = read_file(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadKey {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self { cert_pem, key })
    }

    /// Writes `ca.crt` (0644) and `ca.key` (0600) into `dir`, which must exist.
    pub fn save(&self, dir: &Path) -> Result<(), PkiError> {
        write_private(&dir.join("ca.crt"), &self.cert_pem, 0o644)?;
        write_private(&dir.join("ca.key"), &self.key.serialize_pem(), 0o600)
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate for `user` in `groups`, valid for `valid_for`.
    ///
    /// `sans` are DNS names or IP addresses (for server certificates); they
    /// may be empty for a pure client certificate. At most one group: the
    /// certificate generator (rcgen) keeps one value per subject attribute, so
    /// a second organisation would silently replace the first; it is refused.
    pub fn issue(
        &self,
        user: &str,
        groups: &[&str],
        sans: &[String],
        usage: Usage,
        valid_for: Duration,
    ) -> Result<IssuedCert, PkiError> {
        if groups.len() > 1 {
            return Err(PkiError::TooManyGroups {
                user: user.to_owned(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            });
        }
        let mut params = CertificateParams::new(sans.to_vec()).map_err(PkiError::Generate)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        for group in groups {
            dn.push(DnType::OrganizationName, *group);
        }
        params.distinguished_name = dn;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + time::Duration::try_from(valid_for).unwrap_or(time::Duration::MAX);
        let key = KeyPair::generate().map_err(PkiError::Generate)?;
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(PkiError::Generate)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl IssuedCert {
    /// The parsed TLS material for this certificate, trusting `ca`.
    pub fn bundle(&self, ca: &CertificateAuthority) -> Result<crate::TlsBundle, PkiError> {
        crate::TlsBundle::from_pem(ca.cert_pem(), &self.cert_pem, &self.key_pem)
    }

    /// Writes `NAME.crt` (0644) and `NAME.key` (0600) into `dir`.
    pub fn save(&self, dir: &Path, name: &str) -> Result<(), PkiError> {
        write_private(&dir.join(format!("{name}.crt")), &self.cert_pem, 0o644)?;
        write_private(&dir.join(format!("{name}.key")), &self.key_pem, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn issued_certificate_carries_identity_and_survives_save_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate(Duration::from_secs(86_400)).unwrap();
        ca.save(dir.path()).unwrap();
        let loaded = CertificateAuthority::load(dir.path()).unwrap();
        let cert = loaded
            .issue(
                "system:node:worker-1",
                &["system:nodes"],
                &[],
                Usage::Client,
                Duration::from_secs(86_400),
            )
            .unwrap();
        let der = crate::tls::parse_certs_pem(&cert.cert_pem, Path::new("x")).unwrap();
        let id = Identity::from_der(&der[0]).unwrap();
        assert_eq!(id.user, "system:node:worker-1");
        assert_eq!(id.groups, vec!["system:nodes"]);
        let two = loaded.issue(
            "u",
            &["a", "b"],
            &[],
            Usage::Client,
            Duration::from_secs(86_400),
        );
        assert!(matches!(two, Err(PkiError::TooManyGroups { .. })));
    }

    #[test]
    fn load_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = CertificateAuthority::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("ca.crt"), "{err}");
    }
}
