//! The cluster zone's answers, with no IO: what a name under the cluster
//! domain resolves to, read from the watched Services and Endpoints
//! (CoreDNS's `kubernetes` plugin's schema, the subset Capstan serves):
//!
//! - `NAME.NS.svc.DOMAIN` A/AAAA: the ClusterIP; for a headless service
//!   (`clusterIP: None`) every ready endpoint address; for ExternalName a
//!   CNAME to `spec.externalName` (whatever the type asked).
//! - `HOST.NAME.NS.svc.DOMAIN` A/AAAA for a headless service's ready
//!   endpoint whose `hostname` is HOST, or whose IP written with dashes
//!   (`10-1-0-5`) is HOST.
//! - `_PORT._PROTO.NAME.NS.svc.DOMAIN` SRV for a named port: target the
//!   service name (ClusterIP), or one record per ready endpoint (headless).
//! - Any other name in the domain: NXDOMAIN; an existing name with no data
//!   of the asked type: NOERROR with no answer.

use std::net::IpAddr;
use std::sync::Arc;

use capstan_proto::api::core::v1::{EndpointAddress, Endpoints, Service};

/// The query types the zone answers (others get no data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Service location.
    Srv,
    /// Anything else (including CNAME and ANY).
    Other,
}

/// One answer record's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// An A or AAAA record.
    Ip(IpAddr),
    /// A CNAME to this name (absolute, no trailing dot).
    Cname(String),
    /// An SRV record.
    Srv {
        /// Port.
        port: u16,
        /// Target (absolute, no trailing dot).
        target: String,
    },
}

/// One answer: owner name (no trailing dot) and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The owner name.
    pub name: String,
    /// The data.
    pub data: Data,
}

/// The zone's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Records to answer with.
    Found(Vec<Record>),
    /// The name exists but has no data of that type.
    NoData,
    /// The name does not exist in the cluster domain.
    NxDomain,
    /// The name is outside the cluster domain.
    NotInZone,
}

/// Where the zone reads services and endpoints.
pub trait ClusterView {
    /// One service.
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    /// One service's endpoints.
    fn endpoints(&self, namespace: &str, name: &str) -> Option<Arc<Endpoints>>;
}

/// Resolves `qname` (lowercase, no trailing dot) in `domain` (same).
pub fn resolve(qname: &str, qtype: QueryType, domain: &str, view: &impl ClusterView) -> Lookup {
    let Some(rest) = strip_domain(qname, domain) else {
        return Lookup::NotInZone;
    };
    // rest: "" (the domain), "svc", "NS.svc", "NAME.NS.svc", ...
    let labels: Vec<&str> = if rest.is_empty() {
        vec![]
    } else {
        rest.split('.').collect()
    };
    match labels.as_slice() {
        [] | ["svc"] => Lookup::NoData,
        [name, ns, "svc"] => service_name(qname, name, ns, qtype, domain, view),
        [port, proto, name, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => srv(
            qname,
            &port[1..],
            &proto[1..],
            name,
            ns,
            qtype,
            domain,
            view,
        ),
        [host, name, ns, "svc"] => endpoint_host(qname, host, name, ns, qtype, view),
        _ => Lookup::NxDomain,
    }
}

fn strip_domain<'a>(qname: &'a str, domain: &str) -> Option<&'a str> {
    if qname == domain {
        return Some("");
    }
    qname.strip_suffix(domain)?.strip_suffix('.')
}

fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| s.cluster_ip == "None")
}

fn ready(eps: Option<&Endpoints>) -> impl Iterator<Item = &EndpointAddress> {
    eps.into_iter()
        .flat_map(|e| e.subsets.iter())
        .flat_map(|s| s.addresses.iter())
}

fn ip_matches(ip: IpAddr, qtype: QueryType) -> bool {
    matches!(
        (ip, qtype),
        (IpAddr::V4(_), QueryType::A) | (IpAddr::V6(_), QueryType::Aaaa)
    )
}

fn found_or_nodata(records: Vec<Record>) -> Lookup {
    if records.is_empty() {
        Lookup::NoData
    } else {
        Lookup::Found(records)
    }
}

fn service_name(
    qname: &str,
    name: &str,
    ns: &str,
    qtype: QueryType,
    _domain: &str,
    view: &impl ClusterView,
) -> Lookup {
    let Some(svc) = view.service(ns, name) else {
        return Lookup::NxDomain;
    };
    let Some(spec) = &svc.spec else {
        return Lookup::NxDomain;
    };
    if spec.r#type == "ExternalName" {
        let target = spec
            .external_name
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if target.is_empty() {
            return Lookup::NoData;
        }
        return Lookup::Found(vec![Record {
            name: qname.to_owned(),
            data: Data::Cname(target),
        }]);
    }
    let ips: Vec<IpAddr> = if is_headless(&svc) {
        let eps = view.endpoints(ns, name);
        let mut ips: Vec<IpAddr> = ready(eps.as_deref())
            .filter_map(|a| a.ip.parse().ok())
            .collect();
        ips.sort();
        ips.dedup();
        ips
    } else {
        spec.cluster_ip.parse().ok().into_iter().collect()
    };
    found_or_nodata(
        ips.into_iter()
            .filter(|ip| ip_matches(*ip, qtype))
            .map(|ip| Record {
                name: qname.to_owned(),
                data: Data::Ip(ip),
            })
            .collect(),
    )
}

/// The DNS label of a headless service's endpoint: its hostname, or its IP
/// with dashes.
fn endpoint_label(a: &EndpointAddress) -> String {
    if a.hostname.is_empty() {
        a.ip.replace(['.', ':'], "-")
    } else {
        a.hostname.to_ascii_lowercase()
    }
}

fn endpoint_host(
    qname: &str,
    host: &str,
    name: &str,
    ns: &str,
    qtype: QueryType,
    view: &impl ClusterView,
) -> Lookup {
    let Some(svc) = view.service(ns, name) else {
        return Lookup::NxDomain;
    };
    if !is_headless(&svc) {
        return Lookup::NxDomain;
    }
    let eps = view.endpoints(ns, name);
    let ips: Vec<IpAddr> = ready(eps.as_deref())
        .filter(|a| endpoint_label(a) == host)
        .filter_map(|a| a.ip.parse().ok())
        .collect();
    if ips.is_empty() {
        return Lookup::NxDomain;
    }
    found_or_nodata(
        ips.into_iter()
            .filter(|ip| ip_matches(*ip, qtype))
            .map(|ip| Record {
                name: qname.to_owned(),
                data: Data::Ip(ip),
            })
            .collect(),
    )
}

#[allow(clippy::too_many_arguments)]
fn srv(
    qname: &str,
    port_name: &str,
    proto: &str,
    name: &str,
    ns: &str,
    qtype: QueryType,
    domain: &str,
    view: &impl ClusterView,
) -> Lookup {
    let Some(svc) = view.service(ns, name) else {
        return Lookup::NxDomain;
    };
    let Some(spec) = &svc.spec else {
        return Lookup::NxDomain;
    };
    let proto_matches = |p: &str| {
        let p = if p.is_empty() { "tcp" } else { p };
        p.eq_ignore_ascii_case(proto)
    };
    let Some(port) = spec.ports.iter().find(|p| {
        !p.name.is_empty() && p.name.eq_ignore_ascii_case(port_name) && proto_matches(&p.protocol)
    }) else {
        return Lookup::NxDomain;
    };
    if qtype != QueryType::Srv {
        return Lookup::NoData;
    }
    let service_fqdn = format!("{name}.{ns}.svc.{domain}");
    if !is_headless(&svc) {
        let Some(p) = port.port.and_then(|p| u16::try_from(p).ok()) else {
            return Lookup::NoData;
        };
        return Lookup::Found(vec![Record {
            name: qname.to_owned(),
            data: Data::Srv {
                port: p,
                target: service_fqdn,
            },
        }]);
    }
    let eps = view.endpoints(ns, name);
    let mut records = Vec::new();
    for subset in eps.iter().flat_map(|e| e.subsets.iter()) {
        let Some(p) = subset
            .ports
            .iter()
            .find(|p| p.name == port.name && proto_matches(&p.protocol))
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for a in &subset.addresses {
            records.push(Record {
                name: qname.to_owned(),
                data: Data::Srv {
                    port: p,
                    target: format!("{}.{service_fqdn}", endpoint_label(a)),
                },
            });
        }
    }
    found_or_nodata(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_proto::api::core::v1::{EndpointPort, EndpointSubset, ServicePort, ServiceSpec};
    use capstan_proto::api::meta::v1::ObjectMeta;
    use std::collections::HashMap;

    #[derive(Default)]
    struct View {
        services: HashMap<(String, String), Arc<Service>>,
        endpoints: HashMap<(String, String), Arc<Endpoints>>,
    }

    impl ClusterView for View {
        fn service(&self, ns: &str, name: &str) -> Option<Arc<Service>> {
            self.services.get(&(ns.into(), name.into())).cloned()
        }
        fn endpoints(&self, ns: &str, name: &str) -> Option<Arc<Endpoints>> {
            self.endpoints.get(&(ns.into(), name.into())).cloned()
        }
    }

    fn meta(name: &str) -> Option<ObjectMeta> {
        Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        })
    }

    fn view() -> View {
        let mut v = View::default();
        let mut add = |name: &str, spec: ServiceSpec| {
            v.services.insert(
                ("default".into(), name.into()),
                Arc::new(Service {
                    metadata: meta(name),
                    spec: Some(spec),
                    ..Default::default()
                }),
            );
        };
        let ports = vec![ServicePort {
            name: "http".into(),
            protocol: "TCP".into(),
            port: Some(80),
            ..Default::default()
        }];
        add(
            "web",
            ServiceSpec {
                cluster_ip: "127.96.0.10".into(),
                ports: ports.clone(),
                ..Default::default()
            },
        );
        add(
            "db",
            ServiceSpec {
                cluster_ip: "None".into(),
                ports,
                ..Default::default()
            },
        );
        add(
            "ext",
            ServiceSpec {
                r#type: "ExternalName".into(),
                external_name: "Example.COM.".into(),
                ..Default::default()
            },
        );
        let addr = |ip: &str, host: &str| EndpointAddress {
            ip: ip.into(),
            hostname: host.into(),
            ..Default::default()
        };
        v.endpoints.insert(
            ("default".into(), "db".into()),
            Arc::new(Endpoints {
                metadata: meta("db"),
                subsets: vec![EndpointSubset {
                    addresses: vec![addr("127.1.0.2", ""), addr("127.1.0.1", "db-0")],
                    not_ready_addresses: vec![addr("127.1.0.3", "")],
                    ports: vec![EndpointPort {
                        name: "http".into(),
                        port: Some(8080),
                        protocol: "TCP".into(),
                        ..Default::default()
                    }],
                }],
            }),
        );
        v
    }

    const D: &str = "cluster.local";

    fn ips(l: Lookup) -> Vec<IpAddr> {
        let Lookup::Found(r) = l else { panic!("{l:?}") };
        r.into_iter()
            .map(|r| match r.data {
                Data::Ip(ip) => ip,
                d => panic!("{d:?}"),
            })
            .collect()
    }

    #[test]
    fn cluster_ip_headless_and_host_names() {
        let v = view();
        assert_eq!(
            ips(resolve(
                "web.default.svc.cluster.local",
                QueryType::A,
                D,
                &v
            )),
            vec!["127.96.0.10".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            resolve("web.default.svc.cluster.local", QueryType::Aaaa, D, &v),
            Lookup::NoData
        );
        assert_eq!(
            ips(resolve("db.default.svc.cluster.local", QueryType::A, D, &v)),
            vec![
                "127.1.0.1".parse::<IpAddr>().unwrap(),
                "127.1.0.2".parse().unwrap()
            ],
            "ready addresses only"
        );
        assert_eq!(
            ips(resolve(
                "db-0.db.default.svc.cluster.local",
                QueryType::A,
                D,
                &v
            )),
            vec!["127.1.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            ips(resolve(
                "127-1-0-2.db.default.svc.cluster.local",
                QueryType::A,
                D,
                &v
            )),
            vec!["127.1.0.2".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            resolve(
                "127-1-0-3.db.default.svc.cluster.local",
                QueryType::A,
                D,
                &v
            ),
            Lookup::NxDomain
        );
    }

    #[test]
    fn srv_external_name_nxdomain_and_out_of_zone() {
        let v = view();
        assert_eq!(
            resolve(
                "_http._tcp.web.default.svc.cluster.local",
                QueryType::Srv,
                D,
                &v
            ),
            Lookup::Found(vec![Record {
                name: "_http._tcp.web.default.svc.cluster.local".into(),
                data: Data::Srv {
                    port: 80,
                    target: "web.default.svc.cluster.local".into()
                }
            }])
        );
        let Lookup::Found(r) = resolve(
            "_http._tcp.db.default.svc.cluster.local",
            QueryType::Srv,
            D,
            &v,
        ) else {
            panic!()
        };
        assert_eq!(r.len(), 2);
        assert!(r.iter().any(|r| r.data
            == Data::Srv {
                port: 8080,
                target: "db-0.db.default.svc.cluster.local".into()
            }));
        assert_eq!(
            resolve(
                "_http._udp.web.default.svc.cluster.local",
                QueryType::Srv,
                D,
                &v
            ),
            Lookup::NxDomain
        );
        assert_eq!(
            resolve("ext.default.svc.cluster.local", QueryType::A, D, &v),
            Lookup::Found(vec![Record {
                name: "ext.default.svc.cluster.local".into(),
                data: Data::Cname("example.com".into())
            }])
        );
        assert_eq!(
            resolve("nope.default.svc.cluster.local", QueryType::A, D, &v),
            Lookup::NxDomain
        );
        assert_eq!(
            resolve("a.b.c.cluster.local", QueryType::A, D, &v),
            Lookup::NxDomain
        );
        assert_eq!(
            resolve("svc.cluster.local", QueryType::A, D, &v),
            Lookup::NoData
        );
        assert_eq!(
            resolve("example.com", QueryType::A, D, &v),
            Lookup::NotInZone
        );
        assert_eq!(
            resolve("xcluster.local", QueryType::A, D, &v),
            Lookup::NotInZone
        );
    }
}
