//! Processes the harness starts, and the guarantee that they stop: by pid at process exit
//! (`atexit`, which also runs after failed tests) and, should the test binary be killed, by a
//! detached reaper that waits for the test process to vanish.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use super::HarnessError;

/// Something to undo at exit.
#[derive(Clone, Debug)]
enum Cleanup {
    Kill(u32),
    ControlPlaneDown { script: PathBuf, state: PathBuf },
}

static CLEANUPS: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());

fn cleanups() -> std::sync::MutexGuard<'static, Vec<Cleanup>> {
    CLEANUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

extern "C" fn at_exit() {
    let actions: Vec<Cleanup> = cleanups().drain(..).rev().collect();
    for action in actions {
        run_cleanup(&action);
    }
}

fn run_cleanup(action: &Cleanup) {
    match action {
        Cleanup::Kill(pid) => terminate(*pid, Duration::from_secs(5)),
        Cleanup::ControlPlaneDown { script, state } => {
            let _ = Command::new(script)
                .arg("down")
                .arg(state)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn register(action: Cleanup) {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: `at_exit` is a plain extern "C" function with no preconditions.
        unsafe {
            libc::atexit(at_exit);
        }
    });
    cleanups().push(action);
}

fn forget(pid: u32) {
    cleanups().retain(|c| !matches!(c, Cleanup::Kill(p) if *p == pid));
}

/// SIGTERM, then SIGKILL after `grace`; only ever the given pid.
pub fn terminate(pid: u32, grace: Duration) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) with a specific pid and a valid signal has no memory-safety preconditions.
    unsafe {
        if libc::kill(pid, libc::SIGTERM) != 0 {
            return;
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: waitpid on our own child with WNOHANG; a non-child simply returns -1.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        // SAFETY: signal 0 only checks existence.
        if reaped == pid || unsafe { libc::kill(pid, 0) } != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
}

/// A detached watcher that stops `pids` and the control plane once this process is gone, so a
/// killed test binary leaves nothing behind.
pub fn spawn_reaper(
    pids: &[u32],
    control_plane: Option<(&Path, &Path)>,
    log: &Path,
) -> Result<(), HarnessError> {
    let me = std::process::id();
    let mut script = format!("while kill -0 {me} 2>/dev/null; do sleep 0.5; done; ");
    for pid in pids {
        script.push_str(&format!("kill {pid} 2>/dev/null; "));
    }
    if let Some((cp, state)) = control_plane {
        script.push_str(&format!("'{}' down '{}'; ", cp.display(), state.display()));
    }
    let log_file = std::fs::File::create(log).map_err(|e| HarnessError::io(log, e))?;
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| HarnessError::io(log, e))?)
        .stderr(log_file);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn()
        .map_err(|e| HarnessError::io(Path::new("bash"), e))?;
    Ok(())
}

/// Stops what an earlier, killed run of this test binary left in `log_dir`: its kcp-sim (by the
/// pid it recorded, if that process still runs from this dir) and its control plane.
pub fn stop_leftovers(script: &Path, log_dir: &Path) {
    let sim_state = log_dir.join("kcp-sim");
    if let Some(pid) = std::fs::read_to_string(sim_state.join("pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&*sim_state.to_string_lossy()) {
            terminate(pid, Duration::from_secs(5));
        }
    }
    let cp_state = log_dir.join("control-plane");
    if cp_state.join("pids").exists() {
        let _ = Command::new(script)
            .arg("down")
            .arg(&cp_state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The local control plane (`hack/control-plane.sh`) in one state dir.
#[derive(Debug)]
pub struct ControlPlane {
    pub script: PathBuf,
    pub state: PathBuf,
    pub members: usize,
}

impl ControlPlane {
    /// `up N STATE`: builds if needed, starts etcd and N apiservers, waits until ready.
    pub fn up(
        script: PathBuf,
        state: PathBuf,
        members: usize,
        log: &Path,
    ) -> Result<Self, HarnessError> {
        let cp = ControlPlane {
            script,
            state,
            members,
        };
        // A previous run that was killed may have left processes behind.
        cp.run(&["down"], log)?;
        register(Cleanup::ControlPlaneDown {
            script: cp.script.clone(),
            state: cp.state.clone(),
        });
        cp.run(&["up", &members.to_string()], log)?;
        Ok(cp)
    }

    fn run(&self, args: &[&str], log: &Path) -> Result<(), HarnessError> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| HarnessError::io(log, e))?;
        let err = out.try_clone().map_err(|e| HarnessError::io(log, e))?;
        let mut cmd = Command::new(&self.script);
        let (command, rest) = args
            .split_first()
            .map(|(c, r)| (*c, r))
            .unwrap_or(("status", &[]));
        cmd.arg(command);
        if command == "up" {
            cmd.args(rest).arg(&self.state);
        } else {
            cmd.arg(&self.state).args(rest);
        }
        let status = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| HarnessError::io(&self.script, e))?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::Command {
                what: format!("{} {}", self.script.display(), args.join(" ")),
                log: log.to_path_buf(),
            })
        }
    }

    pub fn kubeconfig(&self, member: usize) -> PathBuf {
        self.state.join(format!("lc{member}")).join("kubeconfig")
    }

    pub fn stop_member(&self, member: usize, log: &Path) -> Result<(), HarnessError> {
        self.run(&["stop-member", &member.to_string()], log)
    }

    pub fn start_member(&self, member: usize, log: &Path) -> Result<(), HarnessError> {
        self.run(&["start-member", &member.to_string()], log)
    }
}

/// A running `kcp-sim`.
#[derive(Debug)]
pub struct SimProcess {
    pub pid: u32,
    pub state: PathBuf,
}

impl SimProcess {
    /// Starts `kcp-sim` serving `workspaces` (path, member kubeconfig) and waits for `ready`.
    pub fn start(
        binary: &Path,
        state: &Path,
        workspaces: &[(String, PathBuf)],
        log: &Path,
    ) -> Result<Self, HarnessError> {
        let _ = std::fs::remove_file(state.join("ready"));
        std::fs::create_dir_all(state).map_err(|e| HarnessError::io(state, e))?;
        let out = std::fs::File::create(log).map_err(|e| HarnessError::io(log, e))?;
        let err = out.try_clone().map_err(|e| HarnessError::io(log, e))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--state-dir").arg(state);
        for (path, kubeconfig) in workspaces {
            cmd.arg("--workspace")
                .arg(format!("{path}={}", kubeconfig.display()));
        }
        cmd.env(
            "RUST_LOG",
            std::env::var("KCP_SIM_LOG").unwrap_or_else(|_| "info,kube_bind_e2e=debug".into()),
        );
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| HarnessError::io(binary, e))?;
        let pid = child.id();
        register(Cleanup::Kill(pid));
        let pid_file = state.join("pid");
        std::fs::write(&pid_file, pid.to_string()).map_err(|e| HarnessError::io(&pid_file, e))?;
        let deadline = Instant::now() + Duration::from_secs(90);
        while !state.join("ready").exists() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(HarnessError::Start {
                    what: format!("kcp-sim exited with {status}"),
                    log: log.to_path_buf(),
                });
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Start {
                    what: "kcp-sim not ready after 90s".into(),
                    log: log.to_path_buf(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(SimProcess {
            pid,
            state: state.to_path_buf(),
        })
    }

    pub fn stop(&self) {
        terminate(self.pid, Duration::from_secs(5));
        forget(self.pid);
    }
}
