//! Service address allocation: ClusterIPs from the service range and node
//! ports from the node-port range, as kube-apiserver's allocators do.
//!
//! An allocation is a key in the store (`/registry/ranges/serviceips/IP`,
//! `/registry/ranges/servicenodeports/PORT`) written **in the same
//! transaction** as the Service that holds it, with a compare that the key
//! is absent, and deleted in the transaction that removes the Service (see
//! [`crate::store::ObjectStore`]). So two replicas can never hand out the
//! same address, an allocation survives restarts (it is in the Raft log),
//! and a deleted Service's addresses are free at once — there is no
//! bitmap to repair. Choosing reads the allocated keys from the local
//! replica (possibly stale); a race shows up as a failed compare and the
//! choice is made again.
//!
//! Rules (Kubernetes's):
//! - `ExternalName`: no clusterIP, no node ports.
//! - `clusterIP: None` (headless): nothing allocated.
//! - an empty clusterIP is allocated; a given one must lie in the range and
//!   be free (`provided IP is already allocated`).
//! - `NodePort` and `LoadBalancer` (unless `allocateLoadBalancerNodePorts`
//!   is false): each port without a nodePort gets one; a given one must lie
//!   in the range and be free. One node port may serve the same port
//!   number over TCP and UDP of one Service.
//! - on update, values the caller left empty keep what was allocated
//!   ([`carry_over`]); a node port no longer used is released.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use bytes::Bytes;
use capstan_proto::api::core::v1::{Service, ServicePort, ServiceSpec};
use capstan_proto::{FieldError, Object, Reason};

/// Prefix of ClusterIP allocation keys.
pub const IP_PREFIX: &str = "/registry/ranges/serviceips/";
/// Prefix of node port allocation keys.
pub const NODE_PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";
/// Prefix of every allocation key.
pub const PREFIX: &str = "/registry/ranges/";

/// The ranges services are given addresses from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRanges {
    /// First address of the ClusterIP range (network address).
    ip_base: u32,
    /// Number of addresses in the range.
    ip_count: u32,
    /// The node port range.
    node_ports: RangeInclusive<u16>,
    /// The range as written, for messages.
    cidr: String,
}

impl Default for ServiceRanges {
    /// `127.96.0.0/16` (on loopback, so the proxy binds ClusterIPs without
    /// root on one machine) and `30000-32767`.
    fn default() -> Self {
        Self::parse("127.96.0.0/16", "30000-32767").expect("valid default ranges")
    }
}

impl ServiceRanges {
    /// Parses an IPv4 CIDR (`/8` to `/30`) and a `FIRST-LAST` port range.
    pub fn parse(cidr: &str, node_ports: &str) -> Result<Self, String> {
        let (addr, bits) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr:?} is not an IPv4 CIDR (a.b.c.d/n)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{cidr:?}: {addr:?} is not an IPv4 address"))?;
        let bits: u32 = bits
            .parse()
            .ok()
            .filter(|b| (8..=30).contains(b))
            .ok_or_else(|| format!("{cidr:?}: the prefix length must be 8 to 30"))?;
        let mask = u32::MAX << (32 - bits);
        let base = u32::from(addr);
        if base & !mask != 0 {
            return Err(format!(
                "{cidr:?} has host bits set; the network is {}/{bits}",
                Ipv4Addr::from(base & mask)
            ));
        }
        let (first, last) = node_ports
            .split_once('-')
            .ok_or_else(|| format!("{node_ports:?} is not a port range (FIRST-LAST)"))?;
        let port = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{node_ports:?}: {s:?} is not a port number"))
        };
        let (first, last) = (port(first)?, port(last)?);
        if first > last {
            return Err(format!("{node_ports:?}: the first port is after the last"));
        }
        Ok(Self {
            ip_base: base,
            ip_count: 1 << (32 - bits),
            node_ports: first..=last,
            cidr: cidr.to_owned(),
        })
    }

    /// Whether `ip` may be allocated: in the range, not its network or
    /// broadcast address.
    fn ip_in_range(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        ip > self.ip_base && ip < self.ip_base + self.ip_count - 1
    }

    fn node_port_in_range(&self, port: i32) -> bool {
        u16::try_from(port).is_ok_and(|p| self.node_ports.contains(&p))
    }
}

fn ip_key(ip: &str) -> Bytes {
    Bytes::from(format!("{IP_PREFIX}{ip}"))
}

fn node_port_key(port: i32) -> Bytes {
    Bytes::from(format!("{NODE_PORT_PREFIX}{port}"))
}

/// The allocation keys `obj` holds (empty for anything but a Service).
pub fn reservations(obj: &Object) -> BTreeSet<Bytes> {
    let mut keys = BTreeSet::new();
    let Object::Service(svc) = obj else {
        return keys;
    };
    let Some(spec) = &svc.spec else {
        return keys;
    };
    if spec.r#type != "ExternalName"
        && !spec.cluster_ip.is_empty()
        && spec.cluster_ip != "None"
        && spec.cluster_ip.parse::<Ipv4Addr>().is_ok()
    {
        keys.insert(ip_key(&spec.cluster_ip));
    }
    for p in &spec.ports {
        if let Some(port) = p.node_port.filter(|p| *p != 0) {
            keys.insert(node_port_key(port));
        }
    }
    keys
}

/// What is allocated now, from the keys under [`PREFIX`].
#[derive(Debug, Default)]
pub struct Allocated {
    ips: BTreeSet<u32>,
    node_ports: BTreeSet<i32>,
}

impl Allocated {
    /// From the allocation keys read from the store.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut out = Allocated::default();
        for key in keys {
            let Ok(key) = std::str::from_utf8(key) else {
                continue;
            };
            if let Some(ip) = key.strip_prefix(IP_PREFIX) {
                if let Ok(ip) = ip.parse::<Ipv4Addr>() {
                    out.ips.insert(u32::from(ip));
                }
            } else if let Some(port) = key.strip_prefix(NODE_PORT_PREFIX)
                && let Ok(port) = port.parse()
            {
                out.node_ports.insert(port);
            }
        }
        out
    }
}

/// Which allocations were asked for by the caller (a conflict on them is
/// the caller's error) rather than chosen here (a conflict means: choose
/// again).
#[derive(Debug, Default)]
pub struct Requested {
    keys: BTreeSet<Bytes>,
}

impl Requested {
    /// Whether `key` was asked for explicitly.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains(key)
    }
}

/// The error for an explicitly requested allocation someone else holds.
pub fn already_allocated(svc: &Service, key: &[u8]) -> FieldError {
    let key = String::from_utf8_lossy(key);
    if let Some(ip) = key.strip_prefix(IP_PREFIX) {
        return FieldError::new(
            "spec.clusterIPs",
            Reason::InvalidValue,
            format!(
                "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
            ),
        );
    }
    let port: i32 = key
        .strip_prefix(NODE_PORT_PREFIX)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let index = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.iter().position(|p| p.node_port == Some(port)))
        .unwrap_or(0);
    FieldError::new(
        format!("spec.ports[{index}].nodePort"),
        Reason::InvalidValue,
        format!("Invalid value: {port}: provided port is already allocated"),
    )
}

/// Fills what an update left empty from the stored Service: clusterIP and
/// clusterIPs, and each port's nodePort (matched by name, else by port and
/// protocol) while the type still uses node ports.
pub fn carry_over(new: &mut Service, old: &Service) {
    let (Some(spec), Some(old_spec)) = (new.spec.as_mut(), old.spec.as_ref()) else {
        return;
    };
    if spec.r#type == "ExternalName" || old_spec.r#type == "ExternalName" {
        return;
    }
    if spec.cluster_ip.is_empty() && !old_spec.cluster_ip.is_empty() {
        spec.cluster_ip = old_spec.cluster_ip.clone();
    }
    if spec.cluster_ips.is_empty() && !old_spec.cluster_ips.is_empty() {
        spec.cluster_ips = old_spec.cluster_ips.clone();
    }
    if uses_node_ports(spec) {
        for p in &mut spec.ports {
            if p.node_port.unwrap_or(0) != 0 {
                continue;
            }
            let same = |o: &&ServicePort| {
                if !p.name.is_empty() || !o.name.is_empty() {
                    o.name == p.name
                } else {
                    o.port == p.port && o.protocol == p.protocol
                }
            };
            if let Some(old_port) = old_spec.ports.iter().find(same) {
                p.node_port = old_port.node_port;
            }
        }
    }
}

fn uses_node_ports(spec: &ServiceSpec) -> bool {
    match spec.r#type.as_str() {
        "NodePort" => true,
        "LoadBalancer" => spec.allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

/// Allocates what `svc` still lacks (after defaults and validation) from
/// `ranges`, avoiding `allocated` except what `holds` (the stored version's
/// own keys, on update). Returns the explicitly requested keys, or the
/// field errors (out of range, exhausted).
pub fn allocate(
    svc: &mut Service,
    ranges: &ServiceRanges,
    allocated: &Allocated,
    holds: &BTreeSet<Bytes>,
) -> Result<Requested, Vec<FieldError>> {
    let mut requested = Requested::default();
    let mut errors = Vec::new();
    let Some(spec) = svc.spec.as_mut() else {
        return Ok(requested);
    };
    if spec.r#type == "ExternalName" {
        return Ok(requested);
    }
    let held = |key: &Bytes| holds.contains(key);
    // ClusterIP.
    if spec.cluster_ip.is_empty() {
        match pick_ip(ranges, allocated) {
            Some(ip) => {
                spec.cluster_ip = ip.to_string();
                spec.cluster_ips = vec![spec.cluster_ip.clone()];
            }
            None => errors.push(FieldError::new(
                "spec.clusterIPs",
                Reason::InvalidValue,
                format!(
                    "failed to allocate a serviceIP: range {} is full",
                    ranges.cidr
                ),
            )),
        }
    } else if spec.cluster_ip != "None" {
        if spec.cluster_ips.is_empty() {
            spec.cluster_ips = vec![spec.cluster_ip.clone()];
        }
        if let Ok(ip) = spec.cluster_ip.parse::<Ipv4Addr>() {
            let key = ip_key(&spec.cluster_ip);
            if !held(&key) {
                if !ranges.ip_in_range(ip) {
                    errors.push(FieldError::new(
                        "spec.clusterIPs",
                        Reason::InvalidValue,
                        format!(
                            "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                            ranges.cidr
                        ),
                    ));
                }
                requested.keys.insert(key);
            }
        } else {
            errors.push(FieldError::new(
                "spec.clusterIP",
                Reason::InvalidValue,
                format!(
                    "Invalid value: {:?}: only IPv4 service addresses are supported",
                    spec.cluster_ip
                ),
            ));
        }
    } else if spec.cluster_ips.is_empty() {
        spec.cluster_ips = vec!["None".to_owned()];
    }
    // Node ports.
    if uses_node_ports(spec) {
        // Ports given in this request, and one port number per number
        // (TCP and UDP of one Service may share a node port).
        let mut chosen: BTreeMap<i32, i32> = BTreeMap::new();
        let mut taken_here: BTreeSet<i32> = BTreeSet::new();
        for (i, p) in spec.ports.iter().enumerate() {
            if let Some(port) = p.node_port.filter(|p| *p != 0) {
                taken_here.insert(port);
                let key = node_port_key(port);
                if !held(&key) {
                    if !ranges.node_port_in_range(port) {
                        errors.push(FieldError::new(
                            format!("spec.ports[{i}].nodePort"),
                            Reason::InvalidValue,
                            format!(
                                "Invalid value: {port}: provided port is not in the valid range. The range of valid ports is {}-{}",
                                ranges.node_ports.start(),
                                ranges.node_ports.end()
                            ),
                        ));
                    }
                    requested.keys.insert(key);
                }
            }
        }
        for (i, p) in spec.ports.iter_mut().enumerate() {
            if p.node_port.unwrap_or(0) != 0 {
                continue;
            }
            let same_number = p.port.and_then(|n| chosen.get(&n).copied());
            let port = same_number.or_else(|| pick_node_port(ranges, allocated, &taken_here));
            match port {
                Some(port) => {
                    p.node_port = Some(port);
                    taken_here.insert(port);
                    if let Some(n) = p.port {
                        chosen.insert(n, port);
                    }
                }
                None => errors.push(FieldError::new(
                    format!("spec.ports[{i}].nodePort"),
                    Reason::InvalidValue,
                    "failed to allocate a nodePort: range is full",
                )),
            }
        }
    }
    if errors.is_empty() {
        Ok(requested)
    } else {
        Err(errors)
    }
}

/// A random number (from a v4 uuid, already a dependency).
fn random_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

/// A random free address of the range.
fn pick_ip(ranges: &ServiceRanges, allocated: &Allocated) -> Option<Ipv4Addr> {
    let usable = ranges.ip_count.checked_sub(2)?;
    if usable == 0 {
        return None;
    }
    let start = random_u32() % usable;
    (0..usable)
        .map(|i| ranges.ip_base + 1 + (start + i) % usable)
        .find(|ip| !allocated.ips.contains(ip))
        .map(Ipv4Addr::from)
}

/// A random free node port.
fn pick_node_port(
    ranges: &ServiceRanges,
    allocated: &Allocated,
    taken_here: &BTreeSet<i32>,
) -> Option<i32> {
    let first = i32::from(*ranges.node_ports.start());
    let count = i32::from(*ranges.node_ports.end()) - first + 1;
    let start = (random_u32() % count as u32) as i32;
    (0..count)
        .map(|i| first + (start + i) % count)
        .find(|p| !allocated.node_ports.contains(p) && !taken_here.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(kind: &str, cluster_ip: &str, node_ports: &[i32]) -> Service {
        Service {
            spec: Some(ServiceSpec {
                r#type: kind.into(),
                cluster_ip: cluster_ip.into(),
                ports: node_ports
                    .iter()
                    .enumerate()
                    .map(|(i, np)| ServicePort {
                        name: format!("p{i}"),
                        port: Some(80 + i as i32),
                        protocol: "TCP".into(),
                        node_port: (*np != 0).then_some(*np),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ranges_parse_and_refuse_nonsense() {
        let r = ServiceRanges::parse("10.96.0.0/12", "30000-32767").unwrap();
        assert!(r.ip_in_range("10.96.0.1".parse().unwrap()));
        assert!(
            !r.ip_in_range("10.96.0.0".parse().unwrap()),
            "network address"
        );
        assert!(!r.ip_in_range("10.112.0.1".parse().unwrap()));
        for (cidr, ports, wanted) in [
            ("10.96.0.1/12", "30000-32767", "host bits"),
            ("10.96.0.0", "30000-32767", "CIDR"),
            ("10.96.0.0/31", "30000-32767", "8 to 30"),
            ("fd00::/64", "30000-32767", "IPv4"),
            ("10.96.0.0/12", "32767-30000", "after the last"),
            ("10.96.0.0/12", "30000", "FIRST-LAST"),
        ] {
            let e = ServiceRanges::parse(cidr, ports).unwrap_err();
            assert!(e.contains(wanted), "{cidr} {ports}: {e}");
        }
    }

    #[test]
    fn allocates_free_addresses_and_keeps_given_ones() {
        let ranges = ServiceRanges::parse("127.96.0.0/29", "30000-30002").unwrap();
        let allocated = Allocated::from_keys([
            b"/registry/ranges/serviceips/127.96.0.1".as_slice(),
            b"/registry/ranges/serviceips/127.96.0.2".as_slice(),
            b"/registry/ranges/servicenodeports/30000".as_slice(),
        ]);
        let mut svc = service("NodePort", "", &[0, 0]);
        let requested = allocate(&mut svc, &ranges, &allocated, &BTreeSet::new()).unwrap();
        let spec = svc.spec.as_ref().unwrap();
        let ip: Ipv4Addr = spec.cluster_ip.parse().unwrap();
        assert!(ranges.ip_in_range(ip) && !allocated.ips.contains(&u32::from(ip)));
        assert_eq!(spec.cluster_ips, vec![spec.cluster_ip.clone()]);
        let ports: BTreeSet<i32> = spec.ports.iter().map(|p| p.node_port.unwrap()).collect();
        assert_eq!(ports, BTreeSet::from([30001, 30002]));
        assert!(
            requested.keys.is_empty(),
            "nothing was asked for explicitly"
        );
        assert_eq!(reservations(&Object::Service(svc.clone())).len(), 3);

        // A third node port does not fit.
        let mut full = service("NodePort", "", &[0, 0, 0]);
        let errors = allocate(&mut full, &ranges, &allocated, &BTreeSet::new()).unwrap_err();
        assert!(
            errors[0].path.to_string().contains("nodePort"),
            "{errors:?}"
        );

        // Given values: recorded as requested; out of range refused.
        let mut given = service("NodePort", "127.96.0.5", &[30002]);
        let requested = allocate(&mut given, &ranges, &allocated, &BTreeSet::new()).unwrap();
        assert!(requested.contains(b"/registry/ranges/serviceips/127.96.0.5"));
        assert!(requested.contains(b"/registry/ranges/servicenodeports/30002"));
        let mut outside = service("NodePort", "10.0.0.1", &[40000]);
        let errors = allocate(&mut outside, &ranges, &allocated, &BTreeSet::new()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].message.contains("not in the valid range"));

        // Headless and ExternalName get nothing.
        let mut headless = service("ClusterIP", "None", &[0]);
        allocate(&mut headless, &ranges, &allocated, &BTreeSet::new()).unwrap();
        assert!(reservations(&Object::Service(headless)).is_empty());
        let mut external = service("ExternalName", "", &[]);
        allocate(&mut external, &ranges, &allocated, &BTreeSet::new()).unwrap();
        assert!(reservations(&Object::Service(external)).is_empty());
    }

    #[test]
    fn an_update_keeps_what_was_allocated() {
        let ranges = ServiceRanges::default();
        let old = service("NodePort", "127.96.0.9", &[30500]);
        let mut new = service("NodePort", "", &[0]);
        carry_over(&mut new, &old);
        let holds = reservations(&Object::Service(old.clone()));
        let requested = allocate(&mut new, &ranges, &Allocated::default(), &holds).unwrap();
        assert_eq!(new.spec.as_ref().unwrap().cluster_ip, "127.96.0.9");
        assert_eq!(new.spec.as_ref().unwrap().ports[0].node_port, Some(30500));
        assert!(
            requested.keys.is_empty(),
            "held keys are not requested again"
        );
        // Back to ClusterIP: the node port is released.
        let mut plain = service("ClusterIP", "", &[0]);
        carry_over(&mut plain, &old);
        assert_eq!(
            reservations(&Object::Service(plain)),
            BTreeSet::from([ip_key("127.96.0.9")])
        );
    }
}
