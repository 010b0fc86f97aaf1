//! TLS transport for tonic: an authenticated accept loop for servers and a
//! connector for channels.
//!
//! Servers: [`tls_incoming`] accepts TCP connections, runs each TLS handshake
//! on its own task (a slow or hostile client never stalls the accept loop),
//! drops connections whose handshake fails (plaintext, no certificate, a
//! certificate from another CA, TLS 1.2), and yields the rest to
//! `tonic::transport::Server::serve_with_incoming*`. tonic then exposes the
//! peer's certificates to handlers through `Request::peer_certs`.
//!
//! Clients: [`channel`] builds a lazily connecting, self-reconnecting tonic
//! channel that dials TCP and performs the TLS 1.3 handshake with the given
//! client configuration, verifying the server against the cluster CA.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` and yields those that complete a mutual
/// TLS handshake under `config`. The accept task stops when the returned
/// stream is dropped.
pub fn tls_incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = tx.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Binds `addr` and returns the listener and the address actually bound
/// (useful with port 0).
pub async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// A lazily connecting gRPC channel to `addr` (`host:port`) over TLS 1.3 with
/// `config`. The server's certificate must name `host` (DNS name or IP).
pub fn channel(
    addr: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let connector = TlsConnector::from(config);
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    let dial = tower::service_fn(move |uri: Uri| {
        let connector = connector.clone();
        async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::other("address has no host"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri
                .port_u16()
                .ok_or_else(|| io::Error::other("address has no port"))?;
            let name = ServerName::try_from(host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, io::Error>(TokioIo::new(tls))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(dial))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use futures::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::tls::{TlsBundle, parse_certs_pem, parse_key_pem};
    use crate::{CertificateAuthority, Usage};

    fn bundle(ca: &CertificateAuthority, user: &str, usage: Usage) -> TlsBundle {
        let sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let c = ca
            .issue(user, &["g"], &sans, usage, Duration::from_secs(3600))
            .unwrap();
        c.bundle(ca).unwrap()
    }

    /// Connects with `config` and reports whether the server accepted the
    /// connection (yielded it) and whether an exchange of bytes worked.
    async fn attempt(
        addr: SocketAddr,
        incoming: &mut ReceiverStream<Result<TlsStream<TcpStream>, io::Error>>,
        config: Arc<rustls::ClientConfig>,
    ) -> bool {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let client = TlsConnector::from(config).connect(name, tcp).await;
        let accepted = tokio::time::timeout(Duration::from_secs(2), incoming.next()).await;
        match (client, accepted) {
            (Ok(mut client), Ok(Some(Ok(mut server)))) => {
                client.write_all(b"ping").await.unwrap();
                let mut buf = [0u8; 4];
                server.read_exact(&mut buf).await.unwrap();
                &buf == b"ping"
            }
            (Ok(mut client), _) => {
                // TLS 1.3: the client may finish its side before the server
                // refuses its certificate; the refusal shows on first read.
                let mut buf = [0u8; 1];
                let _ = client.write_all(b"x").await;
                assert!(!matches!(client.read(&mut buf).await, Ok(1)));
                false
            }
            (Err(_), _) => false,
        }
    }

    #[tokio::test]
    async fn listener_accepts_only_mutual_tls13_from_the_cluster_ca() {
        let ca = CertificateAuthority::generate(Duration::from_secs(3600)).unwrap();
        let other_ca = CertificateAuthority::generate(Duration::from_secs(3600)).unwrap();
        let server = bundle(&ca, "server", Usage::Server);
        let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut incoming = tls_incoming(listener, server.server_config().unwrap());

        // A client of the cluster CA is accepted and can exchange bytes.
        let good = bundle(&ca, "alice", Usage::Client).client_config().unwrap();
        assert!(
            attempt(addr, &mut incoming, good).await,
            "valid client refused"
        );

        // A client with no certificate is refused.
        let roots = {
            let mut r = rustls::RootCertStore::empty();
            r.add(server.ca[0].clone()).unwrap();
            r
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let no_cert = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        assert!(
            !attempt(addr, &mut incoming, Arc::new(no_cert)).await,
            "client without certificate accepted"
        );

        // A client certificate from another CA is refused.
        let foreign = other_ca
            .issue(
                "mallory",
                &[],
                &[],
                Usage::Client,
                Duration::from_secs(3600),
            )
            .unwrap();
        let foreign_cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(
                parse_certs_pem(&foreign.cert_pem, Path::new("f")).unwrap(),
                parse_key_pem(&foreign.key_pem, Path::new("f")).unwrap(),
            )
            .unwrap();
        assert!(
            !attempt(addr, &mut incoming, Arc::new(foreign_cfg)).await,
            "foreign CA accepted"
        );

        // A TLS 1.2-only client with a valid certificate is refused.
        let alice = bundle(&ca, "alice", Usage::Client);
        let tls12 = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(alice.chain.clone(), alice.key.clone_key())
            .unwrap();
        assert!(
            !attempt(addr, &mut incoming, Arc::new(tls12)).await,
            "TLS 1.2 accepted"
        );

        // Plaintext is refused: the server closes without yielding a stream.
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), plain.read_to_end(&mut buf)).await;
        assert!(!buf.starts_with(b"HTTP/"), "plaintext got an HTTP answer");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), incoming.next())
                .await
                .is_err(),
            "plaintext connection was yielded"
        );

        // And the listener still serves valid clients afterwards.
        let good = bundle(&ca, "bob", Usage::Client).client_config().unwrap();
        assert!(
            attempt(addr, &mut incoming, good).await,
            "valid client refused after attacks"
        );
    }
}
