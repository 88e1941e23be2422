//! A throwaway `haproxy` on 127.0.0.1 in front of backend replicas for one test: round-robin, no
//! affinity, `X-Forwarded-For` added, a replica out of rotation while its `/healthz` fails, and
//! each response naming the replica that answered (`X-Served-By: replica-<n>`).
//! `haproxy` comes from Debian (`hack/test.sh` installs it, `hack/lib/tools.sh: ensure_haproxy`).

use std::{process::Command, time::Duration};

use super::{
    HarnessError,
    child::{ChildProcess, free_port},
    paths,
};

/// How long [`Haproxy::start`] waits for the front to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running haproxy; stopped by its pid when dropped.
#[derive(Debug)]
pub struct Haproxy {
    port: u16,
    _process: ChildProcess,
}

/// The configuration: the front on `front`, round-robin over the replicas on `replicas`.
pub fn config(front: u16, replicas: &[u16]) -> String {
    let mut text = format!(
        "global\n  maxconn 4096\n\
         defaults\n  mode http\n  option forwardfor\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
         frontend front\n  bind 127.0.0.1:{front}\n  default_backend replicas\n\
         backend replicas\n  balance roundrobin\n  option httpchk GET /healthz\n  http-check expect status 200\n\
         \x20 http-response set-header X-Served-By %s\n"
    );
    for (i, port) in replicas.iter().enumerate() {
        text.push_str(&format!(
            "  server replica-{} 127.0.0.1:{port} check inter 500ms fall 2 rise 1\n",
            i + 1
        ));
    }
    text
}

impl Haproxy {
    /// Starts haproxy on a free port in front of the replicas listening on `replicas` (on
    /// 127.0.0.1) and waits until the front answers `/healthz`.
    pub async fn start(replicas: &[u16]) -> Result<Self, HarnessError> {
        Self::start_on(free_port()?, replicas).await
    }

    /// [`Haproxy::start`] on `port` (picked before the replicas start, since they advertise it).
    pub async fn start_on(port: u16, replicas: &[u16]) -> Result<Self, HarnessError> {
        let dir = paths::log_dir();
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io(&dir, e))?;
        let file = dir.join(format!("haproxy-{port}.cfg"));
        std::fs::write(&file, config(port, replicas)).map_err(|e| HarnessError::io(&file, e))?;
        let mut command = Command::new("haproxy");
        // -db: in the foreground, so the child's pid is haproxy's own.
        command.arg("-db").arg("-f").arg(&file);
        let log = dir.join(format!("haproxy-{port}.log"));
        let mut process = ChildProcess::spawn(
            "haproxy (install it: hack/test.sh, or apt-get install haproxy)",
            command,
            &log,
        )?;
        process
            .wait_until_answering(
                format!("haproxy on 127.0.0.1:{port}"),
                &format!("http://127.0.0.1:{port}/healthz"),
                START_TIMEOUT,
            )
            .await?;
        Ok(Self {
            port,
            _process: process,
        })
    }

    /// `http://127.0.0.1:<port>`, the one URL of the replicas.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_balances_round_robin_over_every_replica_with_health_checks() {
        let text = config(8000, &[8001, 8002]);
        assert!(text.contains("bind 127.0.0.1:8000\n"), "{text}");
        assert!(text.contains("balance roundrobin\n"), "{text}");
        assert!(text.contains("option forwardfor\n"), "{text}");
        assert!(text.contains("option httpchk GET /healthz\n"), "{text}");
        assert!(
            text.contains("server replica-1 127.0.0.1:8001 check"),
            "{text}"
        );
        assert!(
            text.contains("server replica-2 127.0.0.1:8002 check"),
            "{text}"
        );
        assert!(
            text.contains("  http-response set-header X-Served-By %s\n"),
            "{text}"
        );
        // No affinity: nothing pins a client to a replica.
        assert!(
            !text.contains("cookie") && !text.contains("stick"),
            "{text}"
        );
    }
}
