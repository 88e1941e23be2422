//! The backend as a process of its own (its main built as the e2e package's `kb-backend`; tests
//! and benches find it as `env!("CARGO_BIN_EXE_kb-backend")`), on a free loopback port, ready
//! once `/readyz` answers: a replica that can be SIGKILLed, or measured apart from its client.

use std::{path::Path, process::Command, time::Duration};

use super::{
    HarnessError,
    child::{ChildProcess, free_port},
    paths,
};

/// A running backend process; stopped by its pid when dropped.
#[derive(Debug)]
pub struct BackendProcess {
    port: u16,
    process: ChildProcess,
}

impl BackendProcess {
    /// Starts `binary` with `flags` on a free port (`--listen-address`) and waits up to
    /// `patience` for `/readyz`.
    pub async fn start(
        binary: &Path,
        flags: &[String],
        patience: Duration,
    ) -> Result<Self, HarnessError> {
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .arg(format!("--listen-address=127.0.0.1:{port}"))
            .args(flags);
        let log = paths::log_dir().join(format!("backend-{port}.log"));
        let mut process = ChildProcess::spawn("the backend (kb-backend)", command, &log)?;
        process
            .wait_until_answering(
                format!("the backend on port {port}"),
                &format!("http://127.0.0.1:{port}/readyz"),
                patience,
            )
            .await?;
        Ok(Self { port, process })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// SIGKILL: the process ends where it stands, releasing nothing.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        self.process.signal(libc::SIGKILL)
    }

    /// TERM, then KILL after a grace period; waits until it is gone.
    pub async fn stop(&mut self) {
        self.process.stop().await;
    }
}
