//! Query parameters the kube-bind CLI and UI pass around (upstream's `GetQueryParams`).

use serde::Deserialize;

/// The common query parameters of kube-bind routes. Unknown parameters are ignored, as upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct QueryParams {
    /// The logical cluster to act in (a kcp logical cluster id; empty for a plain cluster).
    pub cluster_id: String,
    pub redirect_url: String,
    pub client_side_redirect_url: String,
    pub session_id: String,
    pub client_type: String,
}

impl QueryParams {
    /// The parameters of a raw query string; malformed pairs are skipped, never a failure.
    pub fn from_query(query: Option<&str>) -> Self {
        parse_query(query)
    }

    /// Re-encodes the parameters for the next hop of the login flow, as upstream's `WithParams`:
    /// `client_side_redirect_url` travels as `redirect_url`; the request's own `redirect_url` does not.
    pub fn forwarded_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        let pairs = [
            ("cluster_id", &self.cluster_id),
            ("redirect_url", &self.client_side_redirect_url),
            ("session_id", &self.session_id),
            ("client_type", &self.client_type),
        ];
        for (key, value) in pairs {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        query.finish()
    }
}

/// A query string into `T`: unknown keys ignored, malformed pairs skipped, the last of repeated
/// keys wins; anything that still does not fit gives `T::default()`.
pub fn parse_query<T: Default + serde::de::DeserializeOwned>(query: Option<&str>) -> T {
    let pairs: serde_json::Map<String, serde_json::Value> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
    serde_json::from_value(serde_json::Value::Object(pairs)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_client_side_redirect_as_redirect_url() {
        let params = QueryParams {
            cluster_id: "2ocmmccjkme8bof4".into(),
            redirect_url: "http://ignored".into(),
            client_side_redirect_url: "http://127.0.0.1:5000/callback?x=1".into(),
            session_id: "abc".into(),
            client_type: String::new(),
        };
        assert_eq!(
            params.forwarded_query(),
            "cluster_id=2ocmmccjkme8bof4&redirect_url=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback%3Fx%3D1&session_id=abc"
        );
        assert_eq!(QueryParams::default().forwarded_query(), "");
    }
}
