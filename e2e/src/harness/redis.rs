//! A throwaway `redis-server` on 127.0.0.1 for one test (no persistence), which the test can
//! pause (SIGSTOP: connections stay open, nothing answers), resume, stop and start again on the
//! same port. `redis-server` comes from Debian (`hack/test.sh` installs it).

use std::{process::Command, time::Duration};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{
    Check, HarnessError,
    child::{ChildProcess, free_port},
    paths, wait_for,
};

/// How long [`RedisServer::start`] waits for the first PONG.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running (or paused, or stopped) `redis-server`; stopped by its pid when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    process: Option<ChildProcess>,
}

impl RedisServer {
    /// Starts `redis-server` on a free port and waits until it answers PING.
    pub async fn start() -> Result<Self, HarnessError> {
        let mut server = Self {
            port: free_port()?,
            process: None,
        };
        server.start_again().await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>/0`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Freezes the server (SIGSTOP): clients connect and send, nothing answers.
    pub fn pause(&mut self) -> Result<(), HarnessError> {
        self.running()?.signal(libc::SIGSTOP)
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&mut self) -> Result<(), HarnessError> {
        self.running()?.signal(libc::SIGCONT)
    }

    /// Stops the server (SIGTERM, KILL after a grace period) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop().await;
        }
    }

    /// Starts a fresh, empty server on the same port (stopping the running one first) and
    /// waits until it answers PING.
    pub async fn start_again(&mut self) -> Result<(), HarnessError> {
        self.stop().await;
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command.args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]);
        let log = paths::log_dir().join(format!("redis-{port}.log"));
        let process =
            ChildProcess::spawn("redis-server (install it: hack/test.sh)", command, &log)?;
        let process = self.process.insert(process);
        let address = format!("127.0.0.1:{port}");
        let answered = wait_for(format!("redis-server on {address}"), START_TIMEOUT, || {
            // An exited server ends the wait at once (its log says why, e.g. the port is taken).
            let exited = process.exited();
            let address = address.clone();
            async move {
                if exited {
                    return Check::Done(false);
                }
                match ping(&address, Duration::from_secs(1)).await {
                    Ok(()) => Check::Done(true),
                    Err(e) => Check::Pending(e.to_string()),
                }
            }
        })
        .await;
        match answered {
            Ok(true) => Ok(()),
            Ok(false) => Err(process.gone()),
            Err(e) => Err(HarnessError::Start {
                what: e.to_string(),
                log,
            }),
        }
    }

    /// One PING, answered with PONG within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), HarnessError> {
        ping(&format!("127.0.0.1:{}", self.port), timeout).await
    }

    fn running(&mut self) -> Result<&mut ChildProcess, HarnessError> {
        self.process
            .as_mut()
            .ok_or_else(|| HarnessError::Other("redis-server is stopped".to_string()))
    }
}

/// `PING\r\n` on a new connection; Ok on `+PONG`.
async fn ping(address: &str, timeout: Duration) -> Result<(), HarnessError> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut reply = Vec::new();
        let mut buffer = [0u8; 64];
        while !reply.ends_with(b"\r\n") {
            let n = stream.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buffer[..n]);
        }
        Ok::<_, std::io::Error>(reply)
    };
    let fail = |why: String| HarnessError::Other(format!("PING {address}: {why}"));
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(fail(format!("no answer within {timeout:?}"))),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Ok(Ok(reply)) if reply.starts_with(b"+PONG") => Ok(()),
        Ok(Ok(reply)) => Err(fail(format!(
            "answered {:?}",
            String::from_utf8_lossy(&reply)
        ))),
    }
}
