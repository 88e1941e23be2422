//! Upstream's UI-to-CLI hand-over: after a bind the browser goes to the CLI's loopback callback
//! with `session_id` and `binding_response`, the BindingResponse JSON in base64 with the URL-safe
//! alphabet and padding (Go's `base64.URLEncoding`, which `kubectl bind` decodes).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use kube_bind_apis::wire::BindingResponse;
use url::Url;

/// Why the hand-over URL could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the binding response: {0}")]
pub struct EncodeError(#[from] serde_json::Error);

/// `callback` with `session_id` and `binding_response` appended to its own query.
pub fn cli_callback(
    mut callback: Url,
    session_id: &str,
    response: &BindingResponse,
) -> Result<Url, EncodeError> {
    let encoded = encode(response)?;
    // query_pairs_mut percent-encodes, so the `=` padding survives the query.
    callback
        .query_pairs_mut()
        .append_pair("session_id", session_id)
        .append_pair("binding_response", &encoded);
    Ok(callback)
}

/// The `binding_response` value for `response`.
pub fn encode(response: &BindingResponse) -> Result<String, EncodeError> {
    Ok(URL_SAFE.encode(serde_json::to_vec(response)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(kubeconfig: &[u8]) -> BindingResponse {
        BindingResponse::new(
            "s1",
            "https://idp.example/alice",
            kubeconfig.to_vec(),
            // A run of `~` (0x7e) base64-encodes to sextet 62: `+` in the standard alphabet.
            vec![
                serde_json::json!({"apiVersion": "kube-bind.io/v1alpha2", "metadata": {"name": "~~~~~~"}}),
            ],
        )
    }

    /// What `kubectl bind` does with the callback: read the parameter, base64url-decode it with
    /// padding, parse the JSON.
    fn decoded(url: &Url) -> (String, BindingResponse) {
        let get = |key: &str| {
            url.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| panic!("{key} missing from {url}"))
        };
        let bytes = URL_SAFE.decode(get("binding_response")).unwrap();
        (get("session_id"), serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn the_callback_carries_the_response_decodable_as_the_cli_does() {
        let callback = Url::parse("http://127.0.0.1:5000/callback?state=keep").unwrap();
        let mut saw_padding = false;
        let mut saw_url_safe = false;
        // Kubeconfigs of 3, 4 and 7 bytes are 4, 8 and 12 base64 characters inside the JSON,
        // so the three JSON lengths differ mod 3 and one encoding ends in padding.
        for len in [3, 4, 7] {
            let response = response(&vec![b'k'; len]);
            let url = cli_callback(callback.clone(), "s1", &response).unwrap();
            let raw = encode(&response).unwrap();
            saw_padding |= raw.ends_with('=');
            saw_url_safe |= raw.contains('-') || raw.contains('_');
            assert!(!raw.contains('+') && !raw.contains('/'), "{raw}");
            // Padding is percent-encoded in the query, never a bare `=` inside the value.
            assert!(
                url.query().unwrap().ends_with(&raw.replace('=', "%3D")),
                "{url}"
            );
            assert_eq!(decoded(&url), ("s1".to_owned(), response));
            assert_eq!(
                url.query_pairs()
                    .next()
                    .map(|(k, v)| (k.into_owned(), v.into_owned())),
                Some(("state".to_owned(), "keep".to_owned())),
                "the callback's own query is kept"
            );
        }
        assert!(saw_padding, "one case must end in padding");
        assert!(saw_url_safe, "one case must use the URL-safe alphabet");
    }
}
