//! Both forwarding paths carry 10 MB intact each way, and pass on a
//! half-close: the client ends its writes, still reads the whole echo.

use std::time::Duration;

use capstan_proxy::ForwardMode;
use capstan_proxy::forward::{Carried, forward};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const SIZE: usize = 10 * 1024 * 1024;

async fn carry(mode: ForwardMode, ip: &str) {
    // The endpoint: echoes until the client's half-close, then closes.
    let backend = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let backend_addr = backend.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        let (mut r, mut w) = s.split();
        let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
        w.shutdown().await.unwrap();
        n
    });
    // The proxy: one accepted connection forwarded to the endpoint.
    let front = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let front_addr = front.local_addr().unwrap();
    let proxy = tokio::spawn(async move {
        let (client, _) = front.accept().await.unwrap();
        let upstream = TcpStream::connect(backend_addr).await.unwrap();
        forward(client, upstream, mode).await
    });
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let client = TcpStream::connect(front_addr).await.unwrap();
    let (mut r, mut w) = client.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::with_capacity(SIZE);
    tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut back))
        .await
        .expect("the echo ends within 20 s")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(back.len(), SIZE, "{mode:?}: length");
    assert!(back == data, "{mode:?}: bytes differ");
    assert_eq!(echo.await.unwrap(), SIZE as u64);
    let carried = tokio::time::timeout(Duration::from_secs(5), proxy)
        .await
        .expect("the forward ends after both half-closes")
        .unwrap()
        .unwrap();
    assert_eq!(
        carried,
        Carried {
            to_backend: SIZE as u64,
            to_client: SIZE as u64
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splice_carries_10_mb_intact_with_half_close() {
    carry(ForwardMode::Splice, "127.77.5.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_carries_10_mb_intact_with_half_close() {
    carry(ForwardMode::Copy, "127.77.5.2").await;
}
