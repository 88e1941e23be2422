//! A TCP proxy on 127.0.0.1 that a test can partition: after [`TcpProxy::partition`] it forwards
//! nothing more on old or new connections but keeps them open, as a network partition would
//! (peers see silence, not a reset). Stopped when dropped.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::HarnessError;

/// A running proxy to one upstream address.
pub struct TcpProxy {
    address: SocketAddr,
    partitioned: CancellationToken,
    stop: CancellationToken,
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::Other(format!("cannot bind the TCP proxy: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| HarnessError::Other(format!("the TCP proxy has no address: {e}")))?;
        let partitioned = CancellationToken::new();
        let stop = CancellationToken::new();
        tokio::spawn(accept(
            listener,
            upstream,
            partitioned.clone(),
            stop.clone(),
        ));
        Ok(Self {
            address,
            partitioned,
            stop,
        })
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops forwarding, for good, on every connection; connections stay open.
    pub fn partition(&self) {
        self.partitioned.cancel();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    partitioned: CancellationToken,
    stop: CancellationToken,
) {
    loop {
        let client = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => continue,
            },
        };
        tokio::spawn(connection(
            client,
            upstream,
            partitioned.clone(),
            stop.clone(),
        ));
    }
}

/// Forwards one connection until either side closes or the partition; then holds it open
/// (silent) until the proxy stops.
async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    partitioned: CancellationToken,
    stop: CancellationToken,
) {
    let forward = async {
        if partitioned.is_cancelled() {
            return std::future::pending().await;
        }
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        tokio::select! {
            // Both sockets live on in this future, open and unread: the peers see silence.
            () = partitioned.cancelled() => std::future::pending().await,
            _ = pump(&mut client_read, &mut server_write, &partitioned) => {}
            _ = pump(&mut server_read, &mut client_write, &partitioned) => {}
        }
    };
    tokio::select! {
        () = stop.cancelled() => {}
        () = forward => {}
    }
}

/// Copies `from` to `to` until EOF or an error; after the partition it drops what it read and
/// hangs.
async fn pump(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    partitioned: &CancellationToken,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buffer).await?;
        if partitioned.is_cancelled() {
            return std::future::pending().await;
        }
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buffer[..n]).await?;
    }
}
