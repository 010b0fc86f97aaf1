//! Kubeconfig files: which apiserver replicas to talk to, which CA to trust
//! and which client certificate to present.
//!
//! The format is Kubernetes's own (`clusters`, `users`, `contexts`,
//! `current-context`), read with the subset of fields Capstan uses, plus one
//! extension: `cluster.servers`, a list of every replica's URL. When it is
//! absent, `cluster.server` alone is used. URLs are `https://host[:port]`
//! (port 443 when omitted); there is no plaintext mode.
//!
//! Where the file comes from ([`locate`]): an explicit path (`--kubeconfig`),
//! else `$KUBECONFIG` — a `:`-separated list of which the **first existing
//! file** is used (files are not merged as kubectl does) — else
//! `~/.capstan/config`.
//!
//! Relative file paths inside the file (`certificate-authority`,
//! `client-certificate`, `client-key`) resolve against the kubeconfig's own
//! directory. `*-data` fields hold base64 PEM and win over the path fields.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use capstan_pki::TlsBundle;
use serde::{Deserialize, Serialize};

/// A kubeconfig file failed to load or does not describe a usable context.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// No kubeconfig file could be found.
    #[error("no kubeconfig found: {0}")]
    NotFound(String),
    /// The file could not be read.
    #[error("cannot read kubeconfig {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid kubeconfig YAML.
    #[error("kubeconfig {path} is not valid: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The YAML error.
        reason: String,
    },
    /// Neither a context was asked for nor `current-context` is set.
    #[error("no context chosen and current-context is not set")]
    NoContext,
    /// A context, cluster or user named somewhere is not defined.
    #[error("{what} {name:?} is not defined in the kubeconfig")]
    Unknown {
        /// `context`, `cluster` or `user`.
        what: &'static str,
        /// The missing name.
        name: String,
    },
    /// A required field is empty.
    #[error("{what} {name:?} has no {field}")]
    Missing {
        /// `cluster` or `user`.
        what: &'static str,
        /// Its name.
        name: String,
        /// The missing field (`server`, `certificate-authority`, ...).
        field: &'static str,
    },
    /// A server URL is malformed.
    #[error("cluster {cluster:?}: bad server URL {url:?}: {reason}")]
    BadServer {
        /// The cluster.
        cluster: String,
        /// The URL.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// A `*-data` field is not valid base64.
    #[error("{field} is not valid base64: {reason}")]
    BadBase64 {
        /// Which field, e.g. `user "admin" client-key-data`.
        field: String,
        /// The decoder's message.
        reason: String,
    },
    /// A certificate or key file could not be read.
    #[error("cannot read {field} file {path}: {source}")]
    ReadFile {
        /// Which field, e.g. `user "admin" client-certificate`.
        field: String,
        /// The resolved path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The PEM material does not parse or does not fit together.
    #[error("bad TLS material: {0}")]
    Tls(#[from] capstan_pki::PkiError),
}

/// A kubeconfig file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    /// The clusters, by name.
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    /// The users (client credentials), by name.
    #[serde(default)]
    pub users: Vec<NamedUser>,
    /// The contexts (cluster + user + namespace), by name.
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    /// The context used when none is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// The directory relative paths resolve against (the file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// A cluster entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCluster {
    /// Its name.
    pub name: String,
    /// Its settings.
    pub cluster: Cluster,
}

/// Where a cluster's replicas are and which CA they use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    /// One replica's URL (`https://host:port`).
    #[serde(default)]
    pub server: String,
    /// Capstan extension: every replica's URL. When set, `server` is ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// A PEM file with the cluster CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<String>,
    /// The cluster CA, base64 PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
}

/// A user entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedUser {
    /// Its name.
    pub name: String,
    /// Its credentials.
    pub user: User,
}

/// A client certificate and key, as files or inline data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct User {
    /// A PEM file with the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// The client certificate, base64 PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_data: Option<String>,
    /// A PEM file with the client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// The client key, base64 PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_data: Option<String>,
}

/// A context entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedContext {
    /// Its name.
    pub name: String,
    /// Its settings.
    pub context: Context,
}

/// A cluster, a user and a default namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The cluster's name.
    pub cluster: String,
    /// The user's name.
    pub user: String,
    /// The default namespace (`default` when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Everything needed to connect, resolved from one context.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The context's name.
    pub context: String,
    /// Every replica as `host:port`, in the file's order.
    pub servers: Vec<String>,
    /// The CA, client certificate and key.
    pub tls: TlsBundle,
    /// The default namespace.
    pub namespace: String,
}

/// Picks the kubeconfig file: `explicit`, else the first existing file of
/// `kubeconfig_env` (`$KUBECONFIG`, `:`-separated), else `HOME/.capstan/config`.
/// Pure (the caller passes the environment) so it can be tested.
pub fn locate(
    explicit: Option<&Path>,
    kubeconfig_env: Option<&str>,
    home: Option<&Path>,
) -> Result<PathBuf, KubeconfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    if let Some(list) = kubeconfig_env.filter(|v| !v.is_empty()) {
        let mut tried = Vec::new();
        for entry in list.split(':').filter(|e| !e.is_empty()) {
            let path = PathBuf::from(entry);
            if path.is_file() {
                return Ok(path);
            }
            tried.push(entry.to_owned());
        }
        return Err(KubeconfigError::NotFound(format!(
            "none of the files in KUBECONFIG exists ({})",
            tried.join(", ")
        )));
    }
    match home {
        Some(home) => {
            let path = home.join(".capstan").join("config");
            if path.is_file() {
                Ok(path)
            } else {
                Err(KubeconfigError::NotFound(format!(
                    "{} does not exist; pass --kubeconfig or set KUBECONFIG",
                    path.display()
                )))
            }
        }
        None => Err(KubeconfigError::NotFound(
            "HOME is not set; pass --kubeconfig or set KUBECONFIG".into(),
        )),
    }
}

impl Kubeconfig {
    /// Loads the kubeconfig from `explicit`, `$KUBECONFIG` or
    /// `~/.capstan/config` (see [`locate`]).
    pub fn load(explicit: Option<&Path>) -> Result<Self, KubeconfigError> {
        let env = std::env::var("KUBECONFIG").ok();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let path = locate(explicit, env.as_deref(), home.as_deref())?;
        Self::read(&path)
    }

    /// Reads and parses one file; relative paths resolve against its directory.
    pub fn read(path: &Path) -> Result<Self, KubeconfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| KubeconfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        Self::parse(&text, &base).map_err(|reason| KubeconfigError::Parse {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses YAML text; relative paths will resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, String> {
        let mut config: Kubeconfig = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        config.base_dir = base_dir.to_owned();
        Ok(config)
    }

    /// Resolves `context` (or `current-context`): server addresses, TLS
    /// material (files read, base64 decoded, PEM parsed) and namespace.
    pub fn connection(&self, context: Option<&str>) -> Result<Connection, KubeconfigError> {
        let name = context
            .or(self.current_context.as_deref())
            .filter(|n| !n.is_empty())
            .ok_or(KubeconfigError::NoContext)?;
        let ctx = &self
            .contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| unknown("context", name))?
            .context;
        let cluster = &self
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .ok_or_else(|| unknown("cluster", &ctx.cluster))?
            .cluster;
        let user = &self
            .users
            .iter()
            .find(|u| u.name == ctx.user)
            .ok_or_else(|| unknown("user", &ctx.user))?
            .user;

        let urls: Vec<&String> = if cluster.servers.is_empty() {
            std::iter::once(&cluster.server)
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            cluster.servers.iter().collect()
        };
        if urls.is_empty() {
            return Err(missing("cluster", &ctx.cluster, "server"));
        }
        let servers = urls
            .into_iter()
            .map(|url| {
                server_addr(url).map_err(|reason| KubeconfigError::BadServer {
                    cluster: ctx.cluster.clone(),
                    url: url.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let ca = self
            .material(
                &format!("cluster {:?} certificate-authority", ctx.cluster),
                cluster.certificate_authority_data.as_deref(),
                cluster.certificate_authority.as_deref(),
            )?
            .ok_or_else(|| missing("cluster", &ctx.cluster, "certificate-authority"))?;
        let cert_field = format!("user {:?} client-certificate", ctx.user);
        let cert = self
            .material(
                &cert_field,
                user.client_certificate_data.as_deref(),
                user.client_certificate.as_deref(),
            )?
            .ok_or_else(|| missing("user", &ctx.user, "client-certificate"))?;
        let key_field = format!("user {:?} client-key", ctx.user);
        let key = self
            .material(
                &key_field,
                user.client_key_data.as_deref(),
                user.client_key.as_deref(),
            )?
            .ok_or_else(|| missing("user", &ctx.user, "client-key"))?;

        let tls = TlsBundle {
            ca: capstan_pki::tls::parse_certs_pem(
                &ca.0,
                Path::new(&format!("cluster {:?} CA ({})", ctx.cluster, ca.1)),
            )?,
            chain: capstan_pki::tls::parse_certs_pem(
                &cert.0,
                Path::new(&format!("{cert_field} ({})", cert.1)),
            )?,
            key: capstan_pki::tls::parse_key_pem(
                &key.0,
                Path::new(&format!("{key_field} ({})", key.1)),
            )?,
        };
        Ok(Connection {
            context: name.to_owned(),
            servers,
            tls,
            namespace: ctx
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
        })
    }

    /// PEM text from inline base64 `data` or from `path`, with where it came from.
    fn material(
        &self,
        field: &str,
        data: Option<&str>,
        path: Option<&str>,
    ) -> Result<Option<(String, String)>, KubeconfigError> {
        if let Some(data) = data.filter(|d| !d.trim().is_empty()) {
            let compact: String = data.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| KubeconfigError::BadBase64 {
                    field: format!("{field}-data"),
                    reason: e.to_string(),
                })?;
            let text = String::from_utf8(bytes).map_err(|_| KubeconfigError::BadBase64 {
                field: format!("{field}-data"),
                reason: "decodes to bytes that are not PEM text".into(),
            })?;
            return Ok(Some((text, "inline data".into())));
        }
        if let Some(path) = path.filter(|p| !p.is_empty()) {
            let resolved = self.base_dir.join(path);
            let text =
                std::fs::read_to_string(&resolved).map_err(|source| KubeconfigError::ReadFile {
                    field: field.to_owned(),
                    path: resolved.clone(),
                    source,
                })?;
            return Ok(Some((text, resolved.display().to_string())));
        }
        Ok(None)
    }
}

fn unknown(what: &'static str, name: &str) -> KubeconfigError {
    KubeconfigError::Unknown {
        what,
        name: name.to_owned(),
    }
}

fn missing(what: &'static str, name: &str, field: &'static str) -> KubeconfigError {
    KubeconfigError::Missing {
        what,
        name: name.to_owned(),
        field,
    }
}

/// `https://host[:port][/]` → `host:port` (443 by default).
fn server_addr(url: &str) -> Result<String, &'static str> {
    let rest = match url.split_once("://") {
        Some(("https", rest)) => rest,
        Some(("http", _)) => return Err("plaintext http is not supported; use https"),
        Some(_) => return Err("the scheme must be https"),
        None => return Err("expected https://host:port"),
    };
    let hostport = rest.trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('/') || hostport.contains('@') {
        return Err("expected https://host:port with no path");
    }
    let has_port = if let Some(after) = hostport.strip_prefix('[') {
        // [v6]:port
        let (_, tail) = after.split_once(']').ok_or("unclosed [ in IPv6 address")?;
        !tail.is_empty()
    } else {
        hostport.contains(':')
    };
    if has_port {
        let port = hostport.rsplit(':').next().unwrap_or_default();
        port.parse::<u16>()
            .map_err(|_| "the port is not a number")?;
        Ok(hostport.to_owned())
    } else {
        Ok(format!("{hostport}:443"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pki() -> (tempfile::TempDir, String, String, String) {
        let dir = tempfile::tempdir().unwrap();
        capstan_pki::bootstrap::init(
            &dir.path().join("pki"),
            &capstan_pki::bootstrap::InitSpec {
                replicas: vec![1],
                ..Default::default()
            },
        )
        .unwrap();
        let read = |n: &str| std::fs::read_to_string(dir.path().join("pki").join(n)).unwrap();
        let (ca, cert, key) = (read("ca.crt"), read("admin.crt"), read("admin.key"));
        (dir, ca, cert, key)
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn inline(ca: &str, cert: &str, key: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    servers: [https://127.0.0.1:7001, \"https://[::1]:7002/\", https://localhost]\n    certificate-authority-data: {}\n\
             users:\n- name: u\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n\
             contexts:\n- name: ctx\n  context: {{ cluster: c, user: u, namespace: team }}\n- name: other\n  context: {{ cluster: c, user: nobody }}\n\
             current-context: ctx\n",
            b64(ca),
            b64(cert),
            b64(key)
        )
    }

    #[test]
    fn inline_data_and_servers_list() {
        let (_d, ca, cert, key) = pki();
        let k = Kubeconfig::parse(&inline(&ca, &cert, &key), Path::new("/")).unwrap();
        let c = k.connection(None).unwrap();
        assert_eq!(c.context, "ctx");
        assert_eq!(
            c.servers,
            ["127.0.0.1:7001", "[::1]:7002", "localhost:443"].map(String::from)
        );
        assert_eq!(c.namespace, "team");
        assert_eq!(c.tls.ca.len(), 1);
        c.tls.client_config().unwrap();
    }

    #[test]
    fn relative_files_resolve_against_kubeconfig_dir() {
        let (d, _, _, _) = pki();
        let path = d.path().join("kc.yaml");
        std::fs::write(
            &path,
            "clusters:\n- name: c\n  cluster: { server: \"https://127.0.0.1:6443\", certificate-authority: pki/ca.crt }\n\
             users:\n- name: u\n  user: { client-certificate: pki/admin.crt, client-key: pki/admin.key }\n\
             contexts:\n- name: x\n  context: { cluster: c, user: u }\ncurrent-context: x\n",
        )
        .unwrap();
        let c = Kubeconfig::read(&path).unwrap().connection(None).unwrap();
        assert_eq!(c.servers, ["127.0.0.1:6443"]);
        assert_eq!(c.namespace, "default");
        // A missing file names the field and the resolved path.
        std::fs::remove_file(d.path().join("pki/admin.key")).unwrap();
        let e = Kubeconfig::read(&path)
            .unwrap()
            .connection(None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("user \"u\" client-key"), "{e}");
        assert!(e.contains("pki/admin.key"), "{e}");
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let (_d, ca, cert, key) = pki();
        let text = inline(&ca, &cert, &key);
        let k = Kubeconfig::parse(&text, Path::new("/")).unwrap();
        let err = |ctx: &str| k.connection(Some(ctx)).unwrap_err().to_string();
        assert_eq!(
            err("nope"),
            "context \"nope\" is not defined in the kubeconfig"
        );
        assert_eq!(
            err("other"),
            "user \"nobody\" is not defined in the kubeconfig"
        );

        let no_current =
            Kubeconfig::parse(&text.replace("current-context: ctx\n", ""), Path::new("/")).unwrap();
        assert!(matches!(
            no_current.connection(None),
            Err(KubeconfigError::NoContext)
        ));

        let bad = text.replace(&b64(&key), "not_base64%%%");
        let e = Kubeconfig::parse(&bad, Path::new("/"))
            .unwrap()
            .connection(None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("user \"u\" client-key-data is not valid base64"),
            "{e}"
        );

        let not_pem = text.replace(&b64(&cert), &b64("hello"));
        let e = Kubeconfig::parse(&not_pem, Path::new("/"))
            .unwrap()
            .connection(None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("client-certificate"), "{e}");

        let http = text.replace("https://127.0.0.1:7001", "http://127.0.0.1:7001");
        let e = Kubeconfig::parse(&http, Path::new("/"))
            .unwrap()
            .connection(None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("plaintext http is not supported"), "{e}");

        let no_ca = text.replace(&format!("certificate-authority-data: {}", b64(&ca)), "");
        let e = Kubeconfig::parse(&no_ca, Path::new("/"))
            .unwrap()
            .connection(None)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "cluster \"c\" has no certificate-authority");

        assert!(Kubeconfig::parse("clusters: 3", Path::new("/")).is_err());
    }

    #[test]
    fn server_used_when_servers_absent() {
        let (_d, ca, cert, key) = pki();
        let text = inline(&ca, &cert, &key).replace(
            "    servers: [https://127.0.0.1:7001, \"https://[::1]:7002/\", https://localhost]\n",
            "",
        );
        let c = Kubeconfig::parse(&text, Path::new("/"))
            .unwrap()
            .connection(None)
            .unwrap();
        assert_eq!(c.servers, ["127.0.0.1:1"]);
    }

    #[test]
    fn locate_order() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::fs::write(&b, "").unwrap();
        let explicit = Path::new("/explicit");
        assert_eq!(
            locate(Some(explicit), Some("x"), None).unwrap(),
            PathBuf::from("/explicit")
        );
        let env = format!("{}:{}", a.display(), b.display());
        assert_eq!(locate(None, Some(&env), Some(d.path())).unwrap(), b);
        let e = locate(None, Some(a.to_str().unwrap()), None).unwrap_err();
        assert!(e.to_string().contains("KUBECONFIG"), "{e}");

        let e = locate(None, None, Some(d.path())).unwrap_err();
        assert!(e.to_string().contains(".capstan/config"), "{e}");
        std::fs::create_dir(d.path().join(".capstan")).unwrap();
        std::fs::write(d.path().join(".capstan/config"), "").unwrap();
        assert_eq!(
            locate(None, Some(""), Some(d.path())).unwrap(),
            d.path().join(".capstan/config")
        );
    }

    #[test]
    fn server_addr_forms() {
        assert_eq!(server_addr("https://h:1/").unwrap(), "h:1");
        assert_eq!(server_addr("https://[::1]").unwrap(), "[::1]:443");
        assert!(server_addr("h:1").is_err());
        assert!(server_addr("https://h:x").is_err());
        assert!(server_addr("https://h:1/api").is_err());
    }
}
