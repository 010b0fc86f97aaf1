//! Moving a TCP connection's bytes both ways between a client and its
//! endpoint until both sides have finished: [`splice`] (zero-copy through a
//! pipe pair) or [`copy`] (user-space buffers), chosen by configuration.
//!
//! Both keep Kubernetes' (and TCP's) half-close: when one side ends its
//! writes, the proxy shuts down writing towards the other side and keeps
//! carrying the other direction until it ends too. Buffers are bounded (a
//! pipe or a fixed buffer per direction), and a side that cannot take more
//! bytes stops reading from the other (back-pressure, no busy loop).

pub mod copy;
pub mod splice;

use tokio::net::TcpStream;

use crate::config::ForwardMode;

/// Bytes carried in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    /// Client to endpoint.
    pub to_backend: u64,
    /// Endpoint to client.
    pub to_client: u64,
}

/// Forwards until both directions have ended (or one failed).
pub async fn forward(
    client: TcpStream,
    backend: TcpStream,
    mode: ForwardMode,
) -> std::io::Result<Carried> {
    match mode {
        ForwardMode::Splice => match splice::Pipes::new() {
            Ok(pipes) => splice::forward(&client, &backend, pipes).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create pipes for splice; copying instead");
                copy::forward(client, backend).await
            }
        },
        ForwardMode::Copy => copy::forward(client, backend).await,
    }
}
