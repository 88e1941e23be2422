//! Parameters of an authorization or token request: `application/x-www-form-urlencoded`, each
//! name at most once (RFC 6749 §3.1, §3.2), an empty value counting as absent.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::http::{HeaderMap, header};

/// Parsed parameters, and the names that were sent more than once.
#[derive(Debug, Default)]
pub(super) struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    pub(super) fn parse(raw: &[u8]) -> Self {
        let mut params = Params::default();
        for (name, value) in form_urlencoded::parse(raw) {
            if value.is_empty() {
                continue;
            }
            match params.values.entry(name.into_owned()) {
                Entry::Vacant(slot) => {
                    slot.insert(value.into_owned());
                }
                Entry::Occupied(slot) => {
                    if !params.repeated.contains(slot.key()) {
                        params.repeated.push(slot.key().clone());
                    }
                }
            }
        }
        params
    }

    /// The value of `name`; `None` when absent, empty or repeated (a repeated name is an error
    /// the caller reports through [`Params::first_repeated`]).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        if self.is_repeated(name) {
            return None;
        }
        self.values.get(name).map(String::as_str)
    }

    pub(super) fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    pub(super) fn first_repeated(&self) -> Option<&str> {
        self.repeated.first().map(String::as_str)
    }
}

/// Whether the body is declared as `application/x-www-form-urlencoded`.
pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_and_empty_ones_are_absent() {
        let p = Params::parse(b"a=1&b=&c=x%20y+z");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y z"));
        assert_eq!(p.first_repeated(), None);
    }

    #[test]
    fn repeated_names_are_reported_and_not_read() {
        let p = Params::parse(b"a=1&a=2&b=3");
        assert!(p.is_repeated("a"));
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("3"));
        assert_eq!(p.first_repeated(), Some("a"));
    }
}
