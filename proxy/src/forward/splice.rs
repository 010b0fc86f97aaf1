//! The zero-copy forwarding path: per direction, splice(2) moves bytes from
//! the source socket into a pipe and from the pipe into the destination
//! socket, so they never enter user space. Each step is non-blocking
//! (`SPLICE_F_NONBLOCK` on the pipe, `O_NONBLOCK` on tokio's sockets) and
//! waits on the socket's readiness through tokio, so nothing spins.
//!
//! The pipe is only filled when it is empty and emptied before the next
//! fill, so a `EAGAIN` always means the socket is not ready (never that the
//! pipe is full or empty), which is what tokio's readiness needs to hear.

use std::io;
use std::os::fd::OwnedFd;

use rustix::net::Shutdown;
use rustix::pipe::{PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::Carried;

/// Pipe capacity asked for (the kernel's default is 64 KiB; a larger pipe
/// moves more per syscall). Falls back to the default if refused.
const PIPE_SIZE: usize = 1024 * 1024;

/// One pipe: the read end and the write end.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Its capacity, the most one splice into it moves.
    size: usize,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let size = rustix::pipe::fcntl_setpipe_size(&write, PIPE_SIZE)
            .or_else(|_| rustix::pipe::fcntl_getpipe_size(&write))?;
        Ok(Self { read, write, size })
    }
}

/// The two pipes of one connection (one per direction).
pub struct Pipes(Pipe, Pipe);

impl Pipes {
    /// Creates both pipes.
    pub fn new() -> io::Result<Self> {
        Ok(Self(Pipe::new()?, Pipe::new()?))
    }
}

/// The copy buffer per direction until a direction turns out to be bulk.
const SMALL: usize = 16 * 1024;

/// Writes all of `data` to `to`.
async fn write_all(to: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        to.writable().await?;
        match to.try_write(data) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the destination socket took nothing",
                ));
            }
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

const FLAGS: SpliceFlags = SpliceFlags::MOVE.union(SpliceFlags::NONBLOCK);

/// Carries both directions until both have ended, or one fails.
pub async fn forward(client: &TcpStream, backend: &TcpStream, pipes: Pipes) -> io::Result<Carried> {
    let Pipes(up, down) = pipes;
    let (to_backend, to_client) = tokio::try_join!(
        one_way(client, backend, &up),
        one_way(backend, client, &down)
    )?;
    Ok(Carried {
        to_backend,
        to_client,
    })
}

/// Moves `from`'s bytes to `to` until `from` ends, then shuts down `to`'s
/// write half. Returns the bytes moved.
///
/// Small messages are copied: for a few bytes, two splices and a pipe cost
/// more than a read and a write. The first read that fills the buffer marks
/// the direction as bulk, and splice carries the rest (HAProxy's
/// `splice-auto` heuristic, simplified).
async fn one_way(from: &TcpStream, to: &TcpStream, pipe: &Pipe) -> io::Result<u64> {
    let mut total = 0u64;
    let mut buf = vec![0u8; SMALL];
    loop {
        from.readable().await?;
        let n = match from.try_read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            let _ = rustix::net::shutdown(to, Shutdown::Write);
            return Ok(total);
        }
        write_all(to, &buf[..n]).await?;
        total += n as u64;
        if n == buf.len() {
            break;
        }
    }
    drop(buf);
    loop {
        let filled = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || {
                rustix::pipe::splice(from, None, &pipe.write, None, pipe.size, FLAGS)
                    .map_err(io::Error::from)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if filled == 0 {
            // The source ended its writes: pass the half-close on. The
            // destination may already be gone; that is not an error here.
            let _ = rustix::net::shutdown(to, Shutdown::Write);
            return Ok(total);
        }
        let mut left = filled;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                rustix::pipe::splice(&pipe.read, None, to, None, left, FLAGS)
                    .map_err(io::Error::from)
            }) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "splice into the destination socket moved nothing",
                    ));
                }
                Ok(n) => left -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        total += filled as u64;
    }
}
