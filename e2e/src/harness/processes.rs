//! The `hack/` launchers the harness runs (control plane, kcp), and the guarantee that what they
//! start stops: `down` at process exit (`atexit`, which also runs after failed tests) and, should
//! the test binary be killed, from a detached reaper that waits for the test process to vanish.
//! The launchers only ever signal the pids recorded in their state dirs.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
};

use super::HarnessError;

/// Something to undo at exit.
#[derive(Clone, Debug)]
enum Cleanup {
    /// `<script> down <state>`, then stop the reaper watching for the same (else it would run
    /// `down` once this process is gone, maybe on the state dir of the next run).
    LauncherDown {
        script: PathBuf,
        state: PathBuf,
        reaper: u32,
    },
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
        Cleanup::LauncherDown {
            script,
            state,
            reaper,
        } => {
            let _ = Command::new(script)
                .arg("down")
                .arg(state)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if let Ok(group) = i32::try_from(*reaper) {
                // SAFETY: kill(2) on the reaper's own process group (it was spawned as its
                // leader) with a valid signal; no memory is involved.
                unsafe {
                    libc::kill(-group, libc::SIGTERM);
                }
            }
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

/// A detached watcher that runs `<launcher> down <state>` once this process is gone, so a killed
/// test binary leaves nothing behind.
fn spawn_reaper(launcher: &Path, state: &Path, log: &Path) -> Result<u32, HarnessError> {
    let me = std::process::id();
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; '{}' down '{}'",
        launcher.display(),
        state.display()
    );
    let log_file = std::fs::File::create(log).map_err(|e| HarnessError::io(log, e))?;
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| HarnessError::io(log, e))?)
        .stderr(log_file);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .spawn()
        .map_err(|e| HarnessError::io(Path::new("bash"), e))?;
    Ok(child.id())
}

/// Stops what an earlier, killed run of this test binary left in `log_dir`: its control plane
/// and its kcp (each script stops only the pids recorded in its own state dir).
pub fn stop_leftovers(log_dir: &Path) {
    for (script, state) in [
        (Launcher::CONTROL_PLANE, "control-plane"),
        (Launcher::KCP, "kcp"),
    ] {
        let state = log_dir.join(state);
        if state.join("pids").exists() {
            let _ = Command::new(super::paths::repo_root().join(script))
                .arg("down")
                .arg(&state)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One of the `hack/` launchers (`control-plane.sh`, `kcp.sh`) and the state dir it runs in.
/// Their commands take the state dir first: `<script> <command> <state> [args]`.
#[derive(Debug)]
pub struct Launcher {
    pub script: PathBuf,
    pub state: PathBuf,
    /// Where the script's own output goes.
    pub log: PathBuf,
}

impl Launcher {
    pub const CONTROL_PLANE: &str = "hack/control-plane.sh";
    pub const KCP: &str = "hack/kcp.sh";

    /// `<script> up <state> <args>` (after a `down` for whatever a killed run left), with a
    /// `down` registered for exit and a reaper for a killed test binary.
    pub fn up(
        script: &str,
        state: PathBuf,
        args: &[&str],
        log: PathBuf,
    ) -> Result<Self, HarnessError> {
        let launcher = Launcher {
            script: super::paths::repo_root().join(script),
            state,
            log,
        };
        launcher.run("down", &[])?;
        let reaper_log = launcher.log.with_extension("reaper.log");
        let reaper = spawn_reaper(&launcher.script, &launcher.state, &reaper_log)?;
        register(Cleanup::LauncherDown {
            script: launcher.script.clone(),
            state: launcher.state.clone(),
            reaper,
        });
        launcher.run("up", args)?;
        Ok(launcher)
    }

    /// `<script> <command> <state> <args>`, its output appended to the log.
    pub fn run(&self, command: &str, args: &[&str]) -> Result<(), HarnessError> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| HarnessError::io(&self.log, e))?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError::io(&self.log, e))?;
        let status = Command::new(&self.script)
            .arg(command)
            .arg(&self.state)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| HarnessError::io(&self.script, e))?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::Command {
                what: format!(
                    "{} {command} {} {}",
                    self.script.display(),
                    self.state.display(),
                    args.join(" ")
                ),
                log: self.log.clone(),
            })
        }
    }
}
