//! The proxy's decision logic, with no IO: from the watched Services and
//! Endpoints, the listeners this node should have and where each forwards.
//!
//! Rules (kube-proxy's):
//! - A service port is served on `clusterIP:port` unless the service is
//!   headless (`None`), has no cluster IP yet, or is `ExternalName`;
//!   `NodePort` and `LoadBalancer` services also on `node:nodePort`.
//! - Its backends are the READY addresses (`subsets[].addresses`, never
//!   `notReadyAddresses`) of the same-named Endpoints, each with the port
//!   number of the Endpoints port whose name (and protocol) matches the
//!   service port's name: the endpoints controller resolved `targetPort`.
//! - A port with no ready backend gets no listener: a TCP client is
//!   refused by the kernel at once (RST), a UDP client gets ICMP port
//!   unreachable (ECONNREFUSED on a connected socket).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use capstan_client::watcher::ObjectKey;
use capstan_proto::api::core::v1::{Endpoints, Service};

/// Kubernetes's default ClientIP affinity timeout (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: Duration = Duration::from_secs(10800);

/// A transport protocol the proxy forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (the default when a port names none).
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// Parses a ServicePort/EndpointPort `protocol` ("" is TCP); `None`
    /// for one the proxy does not forward (SCTP).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            _ => None,
        }
    }

    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

/// One socket the proxy listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenKey {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The address and port.
    pub addr: SocketAddr,
}

/// Where one listener forwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The service.
    pub service: ObjectKey,
    /// The service port's name ("" for a single unnamed port).
    pub port_name: String,
    /// The ready endpoints, sorted, at least one.
    pub backends: Vec<SocketAddr>,
    /// ClientIP affinity timeout; `None`: no affinity.
    pub affinity: Option<Duration>,
}

/// Every listener this node should have.
pub type Desired = BTreeMap<ListenKey, Target>;

/// Computes the listeners from the services and their endpoints.
/// `node_port_addr` is where NodePorts listen.
pub fn desired<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    endpoints: impl Fn(&ObjectKey) -> Option<std::sync::Arc<Endpoints>>,
    node_port_addr: IpAddr,
) -> Desired {
    let mut out = Desired::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        if spec.r#type == "ExternalName" {
            continue;
        }
        let key = ObjectKey::of(svc);
        let cluster_ip: Option<IpAddr> = spec.cluster_ip.parse().ok();
        let node_ports = matches!(spec.r#type.as_str(), "NodePort" | "LoadBalancer");
        if cluster_ip.is_none() && !node_ports {
            continue;
        }
        let affinity = (spec.session_affinity == "ClientIP").then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(s as u64))
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
        });
        let eps = endpoints(&key);
        for port in &spec.ports {
            let Some(protocol) = Protocol::parse(&port.protocol) else {
                continue;
            };
            let backends = ready_backends(eps.as_deref(), &port.name, protocol);
            if backends.is_empty() {
                continue;
            }
            let target = Target {
                service: key.clone(),
                port_name: port.name.clone(),
                backends,
                affinity,
            };
            if let (Some(ip), Some(p)) = (cluster_ip, port.port.and_then(valid_port)) {
                out.insert(
                    ListenKey {
                        protocol,
                        addr: SocketAddr::new(ip, p),
                    },
                    target.clone(),
                );
            }
            if node_ports && let Some(p) = port.node_port.and_then(valid_port) {
                out.insert(
                    ListenKey {
                        protocol,
                        addr: SocketAddr::new(node_port_addr, p),
                    },
                    target,
                );
            }
        }
    }
    out
}

fn valid_port(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

/// The ready addresses of `eps` for the service port named `name`, sorted
/// and without repeats.
pub fn ready_backends(eps: Option<&Endpoints>, name: &str, protocol: Protocol) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for subset in eps.map(|e| e.subsets.as_slice()).unwrap_or_default() {
        let Some(port) = subset
            .ports
            .iter()
            .find(|p| p.name == name && Protocol::parse(&p.protocol) == Some(protocol))
            .and_then(|p| p.port.and_then(valid_port))
        else {
            continue;
        };
        out.extend(
            subset
                .addresses
                .iter()
                .filter_map(|a| a.ip.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, port)),
        );
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{
        ClientIpConfig, EndpointAddress, EndpointPort, EndpointSubset, ServicePort, ServiceSpec,
        SessionAffinityConfig,
    };
    use capstan_proto::api::meta::v1::ObjectMeta;
    use std::sync::Arc;

    fn meta(name: &str) -> Option<ObjectMeta> {
        Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        })
    }

    fn svc(ty: &str, ip: &str, ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: meta("web"),
            spec: Some(ServiceSpec {
                r#type: ty.into(),
                cluster_ip: ip.into(),
                ports,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn port(name: &str, proto: &str, port: i32, node_port: Option<i32>) -> ServicePort {
        ServicePort {
            name: name.into(),
            protocol: proto.into(),
            port: Some(port),
            node_port,
            ..Default::default()
        }
    }

    fn eps(ready: &[&str], not_ready: &[&str], ports: &[(&str, &str, i32)]) -> Arc<Endpoints> {
        let addr = |ip: &&str| EndpointAddress {
            ip: (*ip).into(),
            ..Default::default()
        };
        Arc::new(Endpoints {
            metadata: meta("web"),
            subsets: vec![EndpointSubset {
                addresses: ready.iter().map(addr).collect(),
                not_ready_addresses: not_ready.iter().map(addr).collect(),
                ports: ports
                    .iter()
                    .map(|(n, p, port)| EndpointPort {
                        name: (*n).into(),
                        protocol: (*p).into(),
                        port: Some(*port),
                        ..Default::default()
                    })
                    .collect(),
            }],
        })
    }

    const NODE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 9, 1));

    #[test]
    fn cluster_ip_and_node_port_listeners_use_ready_addresses_of_the_named_port() {
        let s = svc(
            "NodePort",
            "127.96.0.10",
            vec![
                port("http", "TCP", 80, Some(30390)),
                port("dns", "UDP", 53, None),
            ],
        );
        let e = eps(
            &["127.1.0.2", "127.1.0.1"],
            &["127.1.0.3"],
            &[("http", "TCP", 8080), ("dns", "UDP", 5353)],
        );
        let d = desired([&s], |_| Some(e.clone()), NODE);
        assert_eq!(d.len(), 3);
        let http = &d[&ListenKey {
            protocol: Protocol::Tcp,
            addr: "127.96.0.10:80".parse().unwrap(),
        }];
        assert_eq!(
            http.backends,
            vec![
                "127.1.0.1:8080".parse().unwrap(),
                "127.1.0.2:8080".parse().unwrap()
            ]
        );
        assert_eq!(http.affinity, None);
        assert!(d.contains_key(&ListenKey {
            protocol: Protocol::Tcp,
            addr: "127.0.9.1:30390".parse().unwrap()
        }));
        let dns = &d[&ListenKey {
            protocol: Protocol::Udp,
            addr: "127.96.0.10:53".parse().unwrap(),
        }];
        assert_eq!(dns.backends[0].port(), 5353);
    }

    #[test]
    fn no_ready_endpoint_headless_and_external_name_get_no_listener() {
        let e = eps(&[], &["127.1.0.3"], &[("", "TCP", 8080)]);
        let s = svc("ClusterIP", "127.96.0.10", vec![port("", "", 80, None)]);
        assert!(desired([&s], |_| Some(e.clone()), NODE).is_empty());
        assert!(desired([&s], |_| None, NODE).is_empty());
        let ready = eps(&["127.1.0.1"], &[], &[("", "TCP", 8080)]);
        let headless = svc("ClusterIP", "None", vec![port("", "", 80, None)]);
        assert!(desired([&headless], |_| Some(ready.clone()), NODE).is_empty());
        let ext = svc("ExternalName", "", vec![port("", "", 80, None)]);
        assert!(desired([&ext], |_| Some(ready.clone()), NODE).is_empty());
    }

    #[test]
    fn client_ip_affinity_timeout_defaults_to_three_hours() {
        let ready = eps(&["127.1.0.1"], &[], &[("", "TCP", 8080)]);
        let mut s = svc("ClusterIP", "127.96.0.10", vec![port("", "", 80, None)]);
        s.spec.as_mut().unwrap().session_affinity = "ClientIP".into();
        let d = desired([&s], |_| Some(ready.clone()), NODE);
        assert_eq!(
            d.values().next().unwrap().affinity,
            Some(DEFAULT_AFFINITY_TIMEOUT)
        );
        s.spec.as_mut().unwrap().session_affinity_config = Some(SessionAffinityConfig {
            client_ip: Some(ClientIpConfig {
                timeout_seconds: Some(60),
            }),
        });
        let d = desired([&s], |_| Some(ready.clone()), NODE);
        assert_eq!(
            d.values().next().unwrap().affinity,
            Some(Duration::from_secs(60))
        );
    }
}
