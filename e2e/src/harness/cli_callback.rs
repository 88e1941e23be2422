//! The CLI's loopback callback, as `kubectl bind` listens for it: an HTTP server on 127.0.0.1
//! that takes `GET /callback?…` from the browser and hands the query to the test.

use std::{collections::HashMap, time::Duration};

use axum::{Router, extract::RawQuery, extract::State, response::Html, routing::get};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::HarnessError;

/// A listening callback. Stops listening when dropped.
pub struct CliCallback {
    url: String,
    calls: mpsc::UnboundedReceiver<HashMap<String, String>>,
    shutdown: CancellationToken,
}

impl CliCallback {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> Result<Self, HarnessError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::Other(format!("no port on 127.0.0.1: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::Other(format!("the callback's address: {e}")))?;
        let (tx, calls) = mpsc::unbounded_channel();
        let app = Router::new()
            .route("/callback", get(callback))
            .with_state(tx);
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(Self {
            url: format!("http://{addr}/callback"),
            calls,
            shutdown,
        })
    }

    /// `http://127.0.0.1:<port>/callback`: the `redirect_url` the CLI would send.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The query of the next call, waiting up to `timeout` for it.
    pub async fn next(
        &mut self,
        timeout: Duration,
    ) -> Result<HashMap<String, String>, HarnessError> {
        match tokio::time::timeout(timeout, self.calls.recv()).await {
            Ok(Some(query)) => Ok(query),
            Ok(None) => Err(HarnessError::Other(
                "the CLI callback stopped listening".to_owned(),
            )),
            Err(_) => Err(HarnessError::Other(format!(
                "no call of the CLI callback {} within {}s",
                self.url,
                timeout.as_secs()
            ))),
        }
    }
}

impl Drop for CliCallback {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Records the query; answers as the CLI does, with a page telling the user to go back.
async fn callback(
    State(calls): State<mpsc::UnboundedSender<HashMap<String, String>>>,
    RawQuery(query): RawQuery,
) -> Html<&'static str> {
    let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    // The test may have stopped waiting; the browser still gets its page.
    let _ = calls.send(pairs);
    Html(
        "<!doctype html><title>kubectl bind</title><main id=\"cli-callback\">\
         <h1>Logged in</h1><p>You can close this window.</p></main>",
    )
}
