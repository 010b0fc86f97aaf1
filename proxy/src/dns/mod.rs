//! The cluster DNS server (hickory-server on UDP and TCP): names in the
//! cluster domain are answered from the watched stores ([`records`]), with
//! no API call per query; other names are forwarded to the configured
//! upstream resolvers ([`upstream`]), or REFUSED when there are none.

pub mod records;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use capstan_client::watcher::Store;
use capstan_proto::api::core::v1::{Endpoints, Service};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, SRV};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use crate::stats::Stats;
use records::{ClusterView, Data, Lookup, QueryType};

/// The watched objects the zone reads.
#[derive(Clone)]
pub struct StoreView {
    /// Services, all namespaces.
    pub services: Store<Service>,
    /// Endpoints, all namespaces.
    pub endpoints: Store<Endpoints>,
}

impl ClusterView for StoreView {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(namespace, name)
    }
    fn endpoints(&self, namespace: &str, name: &str) -> Option<Arc<Endpoints>> {
        self.endpoints.get(namespace, name)
    }
}

/// What to answer with.
struct Reply<'a> {
    code: ResponseCode,
    authoritative: bool,
    answers: &'a [Record],
    authorities: &'a [Record],
    additionals: &'a [Record],
}

impl Reply<'_> {
    fn empty(code: ResponseCode, authoritative: bool) -> Self {
        Self {
            code,
            authoritative,
            answers: &[],
            authorities: &[],
            additionals: &[],
        }
    }
}

/// Answers queries.
pub struct Handler {
    /// The cluster domain, lowercase, no trailing dot.
    domain: String,
    ttl: u32,
    view: StoreView,
    upstream: Vec<SocketAddr>,
    stats: Arc<Stats>,
}

impl Handler {
    /// A handler for `domain` reading `view`.
    pub fn new(
        domain: &str,
        ttl: u32,
        view: StoreView,
        upstream: Vec<SocketAddr>,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            ttl,
            view,
            upstream,
            stats,
        }
    }

    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        mut handle: R,
        reply: Reply<'_>,
    ) -> ResponseInfo {
        let Reply {
            code,
            authoritative,
            answers,
            authorities,
            additionals,
        } = reply;
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = code;
        metadata.authoritative = authoritative;
        metadata.recursion_available = !self.upstream.is_empty();
        let response = MessageResponseBuilder::from_message_request(request).build(
            metadata,
            answers.iter(),
            authorities.iter(),
            std::iter::empty(),
            additionals.iter(),
        );
        match handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "cannot send a dns response");
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }

    fn to_record(&self, r: &records::Record) -> Option<Record> {
        let name = Name::from_ascii(format!("{}.", r.name)).ok()?;
        let data = match &r.data {
            Data::Ip(std::net::IpAddr::V4(ip)) => RData::A(A(*ip)),
            Data::Ip(std::net::IpAddr::V6(ip)) => RData::AAAA(AAAA(*ip)),
            Data::Cname(target) => {
                RData::CNAME(CNAME(Name::from_ascii(format!("{target}.")).ok()?))
            }
            Data::Srv { port, target } => RData::SRV(SRV::new(
                0,
                100,
                *port,
                Name::from_ascii(format!("{target}.")).ok()?,
            )),
        };
        Some(Record::from_rdata(name, self.ttl, data))
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        handle: R,
    ) -> ResponseInfo {
        Stats::add(&self.stats.dns_queries, 1);
        let Ok(info) = request.request_info() else {
            return self
                .respond(request, handle, Reply::empty(ResponseCode::FormErr, false))
                .await;
        };
        let qname = info
            .query
            .name()
            .to_string()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let qtype = match info.query.query_type() {
            RecordType::A => QueryType::A,
            RecordType::AAAA => QueryType::Aaaa,
            RecordType::SRV => QueryType::Srv,
            _ => QueryType::Other,
        };
        let lookup = records::resolve(&qname, qtype, &self.domain, &self.view);
        tracing::debug!(%qname, ?qtype, ?lookup, "dns query");
        match lookup {
            Lookup::Found(found) => {
                let answers: Vec<Record> = found.iter().filter_map(|r| self.to_record(r)).collect();
                self.respond(
                    request,
                    handle,
                    Reply {
                        answers: &answers,
                        ..Reply::empty(ResponseCode::NoError, true)
                    },
                )
                .await
            }
            Lookup::NoData => {
                self.respond(request, handle, Reply::empty(ResponseCode::NoError, true))
                    .await
            }
            Lookup::NxDomain => {
                self.respond(request, handle, Reply::empty(ResponseCode::NXDomain, true))
                    .await
            }
            Lookup::NotInZone if self.upstream.is_empty() => {
                self.respond(request, handle, Reply::empty(ResponseCode::Refused, false))
                    .await
            }
            Lookup::NotInZone => {
                match upstream::forward(&self.upstream, request.as_slice()).await {
                    Ok(reply) => {
                        self.respond(
                            request,
                            handle,
                            Reply {
                                code: reply.metadata.response_code,
                                authoritative: false,
                                answers: &reply.answers,
                                authorities: &reply.authorities,
                                additionals: &reply.additionals,
                            },
                        )
                        .await
                    }
                    Err(e) => {
                        tracing::debug!(%qname, error = %e, "upstream resolvers failed");
                        self.respond(request, handle, Reply::empty(ResponseCode::ServFail, false))
                            .await
                    }
                }
            }
        }
    }
}

/// The running DNS server.
pub struct DnsServer {
    server: Server<Handler>,
}

impl DnsServer {
    /// Binds UDP and TCP on `listen` and starts serving.
    pub async fn start(listen: SocketAddr, handler: Handler) -> std::io::Result<Self> {
        let udp = UdpSocket::bind(listen).await?;
        let tcp = TcpListener::bind(listen).await?;
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 32);
        tracing::info!(%listen, "cluster dns serving");
        Ok(Self { server })
    }

    /// Stops serving and waits for the server's tasks.
    pub async fn stop(mut self) {
        if let Err(e) = self.server.shutdown_gracefully().await {
            tracing::debug!(error = %e, "dns server stopped with an error");
        }
    }
}
