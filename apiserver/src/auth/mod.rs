//! Who is asking and what they may do.
//!
//! Authentication is the TLS handshake: the client certificate chains to the
//! cluster CA and its subject names the [`User`] (CN) and groups (O).
//! Authorization asks, in order, the [`node`] authorizer (for identities in
//! `system:nodes`) and [`rbac`]; the first `Allow` or `Deny` wins; no
//! opinion from either is a denial (default deny). [`bootstrap`] holds the
//! roles and bindings every cluster starts with.

pub mod bootstrap;
pub mod node;
pub mod rbac;

use capstan_proto::Object;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The user name (certificate CN), e.g. `system:node:worker-1`.
    pub name: String,
    /// The groups (certificate O), e.g. `system:nodes`.
    pub groups: Vec<String>,
}

impl User {
    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// An API verb, as RBAC rules name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Read one object.
    Get,
    /// Read a collection.
    List,
    /// Watch a collection.
    Watch,
    /// Create an object.
    Create,
    /// Replace an object (also update-status, with subresource `status`).
    Update,
    /// Patch an object.
    Patch,
    /// Delete one object.
    Delete,
    /// Delete a collection.
    DeleteCollection,
}

impl Verb {
    /// The verb as RBAC rules spell it (`deletecollection`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    /// Whether the verb changes state (and so is audited).
    pub fn is_mutating(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// Everything an authorizer may look at for one request.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    /// Who asks.
    pub user: &'a User,
    /// What they want to do.
    pub verb: Verb,
    /// API group of the resource (`""` for core, `apps`, ...).
    pub group: &'a str,
    /// Plural resource name (`pods`).
    pub resource: &'a str,
    /// Subresource (`status`), empty for the main resource.
    pub subresource: &'a str,
    /// Namespace of the request; empty for cluster-scoped resources and for
    /// requests across all namespaces.
    pub namespace: &'a str,
    /// Object name; empty for list, watch, deletecollection and for create
    /// with generateName.
    pub name: &'a str,
    /// Exact-match requirements of the request's field selector
    /// (`spec.nodeName=worker-1` → `("spec.nodeName", "worker-1")`), for
    /// list/watch/deletecollection.
    pub field_requirements: &'a [(String, String)],
    /// The stored object the request acts on (get, update, patch, delete),
    /// if it exists.
    pub existing: Option<&'a Object>,
    /// The object as it would be written (create, update, patch).
    pub new: Option<&'a Object>,
}

/// An authorizer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request is refused, with the reason to report.
    Deny(String),
    /// This authorizer does not decide; ask the next one.
    NoOpinion,
}

/// Every authenticated user is also in this group, as in Kubernetes.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// Certificates remembered by an [`Authenticator`]; past this it starts over.
const IDENTITY_CACHE: usize = 4096;

/// Names the caller of a gRPC request from its client certificate.
///
/// The TLS layer has already checked the chain to the cluster CA; this reads
/// the subject (CN → user, O → groups) and adds `system:authenticated`.
/// Parsed subjects are cached by certificate bytes (a client sends the same
/// certificate on every request of its connection), so X.509 is parsed once
/// per client, not once per request.
#[derive(Default)]
pub struct Authenticator {
    cache: std::sync::RwLock<std::collections::HashMap<Vec<u8>, User>>,
}

impl Authenticator {
    /// An authenticator with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The caller of `request`.
    pub fn authenticate<B>(&self, request: &tonic::Request<B>) -> Result<User, String> {
        let certs = request
            .peer_certs()
            .ok_or_else(|| "no client certificate presented".to_owned())?;
        let leaf = certs
            .first()
            .ok_or_else(|| "no client certificate presented".to_owned())?;
        if let Some(user) = self
            .cache
            .read()
            .expect("identity cache poisoned")
            .get(leaf.as_ref())
        {
            return Ok(user.clone());
        }
        let identity = capstan_pki::Identity::from_der(leaf).map_err(|e| e.to_string())?;
        let mut groups = identity.groups;
        groups.push(AUTHENTICATED_GROUP.to_owned());
        let user = User {
            name: identity.user,
            groups,
        };
        let mut cache = self.cache.write().expect("identity cache poisoned");
        if cache.len() >= IDENTITY_CACHE {
            cache.clear();
        }
        cache.insert(leaf.as_ref().to_vec(), user.clone());
        Ok(user)
    }
}

/// The authorizer chain: `system:masters` (always allowed, so the cluster
/// cannot be locked out of itself), then the node authorizer, then RBAC;
/// default deny.
#[derive(Default)]
pub struct Authorizer {
    rbac: rbac::RbacAuthorizer,
}

impl Authorizer {
    /// A chain with no RBAC objects loaded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The RBAC authorizer, to keep its roles and bindings current.
    pub fn rbac(&self) -> &rbac::RbacAuthorizer {
        &self.rbac
    }

    /// Allow, or deny with the reason to report.
    pub fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        if attrs.user.in_group(capstan_pki::bootstrap::MASTERS_GROUP) {
            return Decision::Allow;
        }
        match node::authorize(attrs) {
            Decision::NoOpinion => {}
            decided => return decided,
        }
        match self.rbac.authorize(attrs) {
            Decision::NoOpinion => Decision::Deny(denial(attrs)),
            decided => decided,
        }
    }
}

/// Kubernetes's wording of a denial.
fn denial(a: &Attributes<'_>) -> String {
    let resource = if a.subresource.is_empty() {
        a.resource.to_owned()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let group = if a.group.is_empty() {
        "the core API group".to_owned()
    } else {
        format!("API group {:?}", a.group)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    let name = if a.name.is_empty() {
        String::new()
    } else {
        format!(" {:?}", a.name)
    };
    format!(
        "{resource}{name} is forbidden: User {:?} cannot {} resource {resource:?} in {group} {scope}",
        a.user.name,
        a.verb.as_str()
    )
}
