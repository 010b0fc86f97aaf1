//! The plain forwarding path: `copy_bidirectional` with a fixed buffer per
//! direction (it shuts down the write half towards a side when the other
//! side's reads end).

use tokio::net::TcpStream;

use super::Carried;

/// Buffer per direction.
const BUFFER: usize = 64 * 1024;

/// Copies both ways until both directions have ended.
pub async fn forward(mut client: TcpStream, mut backend: TcpStream) -> std::io::Result<Carried> {
    let (to_backend, to_client) =
        tokio::io::copy_bidirectional_with_sizes(&mut client, &mut backend, BUFFER, BUFFER).await?;
    Ok(Carried {
        to_backend,
        to_client,
    })
}
