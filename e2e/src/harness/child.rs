//! A server the harness starts itself (not through a `hack/` launcher): spawned with its output
//! in a log file, signalled and stopped only by its own pid, killed by the kernel should the test
//! binary die first.

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{Check, HarnessError, wait_for};

/// How long a TERM gets before KILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running child process. Stopped (TERM, then KILL after [`STOP_GRACE`]) when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    what: String,
    child: Child,
    log: PathBuf,
}

impl ChildProcess {
    /// Spawns `command` with stdin closed and stdout and stderr appended to `log`.
    ///
    /// NOTE: the child gets KILL when the thread that spawned it ends (`PR_SET_PDEATHSIG`), so a
    /// killed test binary leaves nothing behind; a `ChildProcess` therefore belongs to one test,
    /// not to a static shared by the tests of a binary.
    pub fn spawn(what: &str, mut command: Command, log: &Path) -> Result<Self, HarnessError> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| HarnessError::io(log, e))?;
        let err = out.try_clone().map_err(|e| HarnessError::io(log, e))?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| HarnessError::Start {
            what: format!("cannot start {what}: {e}"),
            log: log.to_path_buf(),
        })?;
        Ok(Self {
            what: what.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Sends `signal` to this child's pid (only while it has not been reaped, so never to a
    /// reused pid).
    pub fn signal(&mut self, signal: libc::c_int) -> Result<(), HarnessError> {
        if self.exited() {
            return Err(self.gone());
        }
        let pid = libc::pid_t::try_from(self.child.id())
            .map_err(|_| HarnessError::Other(format!("{}: pid out of range", self.what)))?;
        // SAFETY: kill(2) on our own unreaped child with a valid signal; no memory is involved.
        if unsafe { libc::kill(pid, signal) } == -1 {
            return Err(HarnessError::Other(format!(
                "{}: kill({pid}, {signal}): {}",
                self.what,
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// True once the process has ended.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` until `url` answers 2xx; an exited process ends the wait at once
    /// (its log says why, e.g. the port is taken). `what` names the wait in its timeout error.
    pub async fn wait_until_answering(
        &mut self,
        what: String,
        url: &str,
        timeout: Duration,
    ) -> Result<(), HarnessError> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| HarnessError::Other(format!("HTTP client: {e}")))?;
        let answered = wait_for(what, timeout, || {
            let exited = self.exited();
            let request = client.get(url).send();
            async move {
                if exited {
                    return Check::Done(false);
                }
                match request.await.map(|r| r.status()) {
                    Ok(status) if status.is_success() => Check::Done(true),
                    Ok(status) => Check::Pending(format!("GET {url}: {status}")),
                    Err(e) => Check::Pending(format!("GET {url}: {e}")),
                }
            }
        })
        .await;
        match answered {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.gone()),
            Err(e) => Err(HarnessError::Start {
                what: e.to_string(),
                log: self.log.clone(),
            }),
        }
    }

    /// The error for a child that ended on its own.
    pub fn gone(&mut self) -> HarnessError {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => "no exit status".to_string(),
        };
        HarnessError::Start {
            what: format!("{} exited ({status})", self.what),
            log: self.log.clone(),
        }
    }

    /// TERM (and CONT, so a paused process acts on it), then KILL after [`STOP_GRACE`]; waits
    /// until it is gone.
    pub async fn stop(&mut self) {
        if self.exited() {
            return;
        }
        let _ = self.signal(libc::SIGTERM);
        let _ = self.signal(libc::SIGCONT);
        let deadline = Instant::now() + STOP_GRACE;
        while !self.exited() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
    }

    /// KILL unless already gone, and reap.
    fn kill(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.exited() {
            return;
        }
        // Drop cannot await: the same TERM / grace / KILL, polled on this thread.
        let _ = self.signal(libc::SIGTERM);
        let _ = self.signal(libc::SIGCONT);
        let deadline = Instant::now() + STOP_GRACE;
        while !self.exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> Result<u16, HarnessError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| HarnessError::Other(format!("no free port on 127.0.0.1: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| HarnessError::Other(format!("no free port on 127.0.0.1: {e}")))
}
