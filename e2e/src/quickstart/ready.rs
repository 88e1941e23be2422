//! Waiting until the backend really answers: `/healthz` 200, `/readyz` 200 (provider ready,
//! caches synced), and `/api/exports?cluster_id=<id>` 200 for every provider cluster. Fails at
//! once when the backend process exits, with the path of its log.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{probe, say};

/// How often the backend is probed.
const POLL: Duration = Duration::from_millis(250);
/// A still-pending check is reported this often even when nothing changed.
const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    #[error("the backend (pid {pid}) exited; see {}", log.display())]
    BackendExited { pid: u32, log: PathBuf },
    #[error("the backend did not answer {what} within {}s (last: {last}); see {}", timeout.as_secs(), log.display())]
    Timeout {
        what: String,
        timeout: Duration,
        last: String,
        log: PathBuf,
    },
}

/// The started backend.
#[derive(Debug)]
pub struct Backend {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub pid: u32,
    pub log: PathBuf,
}

/// The checks, in order: (what, path).
pub fn checks(cluster_ids: &[String]) -> Vec<(String, String)> {
    let mut checks = vec![
        ("/healthz".to_string(), "/healthz".to_string()),
        ("/readyz".to_string(), "/readyz".to_string()),
    ];
    for id in cluster_ids {
        let path = format!("/api/exports?cluster_id={id}");
        checks.push((path.clone(), path));
    }
    checks
}

/// Waits for every check in turn; all of them together may take `timeout`.
pub async fn wait(
    backend: &Backend,
    cluster_ids: &[String],
    timeout: Duration,
) -> Result<(), ReadyError> {
    let started = Instant::now();
    let deadline = started + timeout;
    for (what, path) in checks(cluster_ids) {
        let mut last: String;
        let mut reported = (String::new(), Instant::now());
        loop {
            if !process_alive(backend.pid) {
                return Err(ReadyError::BackendExited {
                    pid: backend.pid,
                    log: backend.log.clone(),
                });
            }
            match probe::get(&backend.url, &path).await {
                Ok(answer) if answer.status == 200 => break,
                Ok(answer) => last = format!("{} {}", answer.status, one_line(&answer.body)),
                Err(e) => last = e.to_string(),
            }
            if last != reported.0 || reported.1.elapsed() >= HEARTBEAT {
                say(format!("  waiting for {what}: {last}"));
                reported = (last.clone(), Instant::now());
            }
            if Instant::now() >= deadline {
                return Err(ReadyError::Timeout {
                    what,
                    timeout,
                    last,
                    log: backend.log.clone(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
        say(format!(
            "backend: {what} 200 (+{:.1} s)",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

/// Whether the backend serves the login the bind commands start with (`/api/authorize`).
pub async fn serves_login(url: &str) -> bool {
    probe::get(url, "/api/authorize")
        .await
        .is_ok_and(|answer| answer.status != 404)
}

/// True while `pid` exists and is not a zombie (a stopped child lingers as one until reaped).
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
    else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .is_some_and(|state| state != 'Z')
}

/// A body squeezed onto one line for progress messages (readyz lists one check per line).
fn one_line(body: &str) -> String {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("[+]"))
        .collect();
    let text = lines.join("; ");
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_health_then_readiness_then_every_cluster() {
        let paths: Vec<String> = checks(&["a".into(), "b".into()])
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(
            paths,
            [
                "/healthz",
                "/readyz",
                "/api/exports?cluster_id=a",
                "/api/exports?cluster_id=b"
            ]
        );
    }

    #[test]
    fn readyz_bodies_show_only_what_fails() {
        let body = "[+]caches ok\n[-]provider failed: no endpoints\nreadyz check failed\n";
        assert_eq!(
            one_line(body),
            "[-]provider failed: no endpoints; readyz check failed"
        );
        assert!(one_line(&"x".repeat(1000)).ends_with('…'));
    }

    #[test]
    fn knows_live_and_gone_processes() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }

    #[tokio::test]
    async fn a_dead_backend_fails_at_once() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let backend = Backend {
            url: "http://127.0.0.1:1".into(),
            pid,
            log: "/tmp/backend.log".into(),
        };
        let err = wait(&backend, &[], Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadyError::BackendExited { .. }), "{err}");
    }
}
