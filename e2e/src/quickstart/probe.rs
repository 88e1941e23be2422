//! One plain-HTTP GET against the local backend, enough to read a status code and a short body
//! (the e2e crate has no HTTP client, and probing `http://127.0.0.1:<port>` needs none).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one probe may take.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Bodies are only shown in messages; the rest is dropped.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{url} is not an http://host:port URL")]
    Url { url: String },
    #[error("GET {url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("GET {url}: no answer within {}s", TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("GET {url}: not an HTTP response")]
    Malformed { url: String },
}

/// An answer: status code and body text.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// `GET <base><path>` where `base` is `http://host:port`.
pub async fn get(base: &str, path: &str) -> Result<Answer, ProbeError> {
    let url = format!("{base}{path}");
    let authority = base
        .strip_prefix("http://")
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| ProbeError::Url { url: url.clone() })?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.take(MAX_BODY as u64).read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match tokio::time::timeout(TIMEOUT, exchange).await {
        Err(_) => return Err(ProbeError::Timeout { url }),
        Ok(Err(source)) => return Err(ProbeError::Io { url, source }),
        Ok(Ok(raw)) => raw,
    };
    parse(&raw).ok_or(ProbeError::Malformed { url })
}

/// Status line and body of a `Connection: close` response (bodies are short and unchunked here;
/// a chunked one is shown raw, which is fine for messages).
fn parse(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    Some(Answer {
        status,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_body() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\n\r\n[-]x\n";
        assert_eq!(
            parse(raw),
            Some(Answer {
                status: 503,
                body: "[-]x\n".into()
            })
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\n\r\n").map(|a| a.status),
            Some(200)
        );
        assert_eq!(parse(b"SSH-2.0-OpenSSH\r\n"), None);
    }

    #[tokio::test]
    async fn refuses_other_urls_and_reports_closed_ports() {
        assert!(matches!(
            get("https://127.0.0.1:1", "/").await,
            Err(ProbeError::Url { .. })
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = get(&format!("http://127.0.0.1:{port}"), "/healthz")
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::Io { .. }), "{err}");
    }

    #[tokio::test]
    async fn talks_to_a_real_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 1024];
            let n = socket.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert!(request.starts_with("GET /readyz HTTP/1.1\r\n"), "{request}");
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")
                .await
                .unwrap();
        });
        let answer = get(&base, "/readyz").await.unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (200, "ok\n"));
    }
}
