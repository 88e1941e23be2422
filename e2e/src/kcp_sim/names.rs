//! Workspace paths and logical-cluster ids: the two ways kcp names a logical cluster.

use std::fmt;

use sha2::{Digest, Sha256};

/// Length of a kcp logical-cluster id (kcp uses 16 base36 characters).
const CLUSTER_ID_LEN: usize = 16;
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A workspace path such as `root:kube-bind`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspacePath(String);

/// An opaque logical-cluster id such as `2ocmmccjkme8bof4`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "invalid workspace path {0:?}: segments are lowercase DNS labels joined by ':', starting at root"
    )]
    InvalidPath(String),
}

impl WorkspacePath {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ok = s
            .split(':')
            .all(|seg| !seg.is_empty() && seg.len() <= 63 && is_dns_label(seg))
            && (s == "root" || s.starts_with("root:"));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(NameError::InvalidPath(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A file-name-safe form (`root:kube-bind` → `root.kube-bind`); DNS labels have no dots.
    pub fn file_stem(&self) -> String {
        self.0.replace(':', ".")
    }
}

fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(|b| *b != b'-')
        && bytes.last().is_some_and(|b| *b != b'-')
}

impl ClusterId {
    /// Derives the id of `path` deterministically from `seed`, so a restarted stand-in keeps ids.
    pub fn derive(path: &WorkspacePath, seed: &str) -> Self {
        let digest = Sha256::digest(format!("{seed}\0{}", path.as_str()).as_bytes());
        let mut id = String::with_capacity(CLUSTER_ID_LEN);
        for byte in digest.iter().take(CLUSTER_ID_LEN) {
            id.push(BASE36[usize::from(*byte) % BASE36.len()] as char);
        }
        Self(id)
    }

    /// Accepts an id as it appears in URLs; ids are 16 lowercase base36 characters.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == CLUSTER_ID_LEN && s.bytes().all(|b| BASE36.contains(&b)))
            .then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_start_at_root_and_be_dns_labels() {
        assert!(WorkspacePath::parse("root").is_ok());
        assert!(WorkspacePath::parse("root:kube-bind").is_ok());
        assert!(WorkspacePath::parse("root:a:b-2").is_ok());
        for bad in [
            "",
            "kube-bind",
            "root:",
            "root::a",
            "root:A",
            "root:-a",
            "root:a.b",
            "*",
        ] {
            assert!(WorkspacePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_deterministic_opaque_and_distinct() {
        let a = WorkspacePath::parse("root:provider-a").unwrap();
        let b = WorkspacePath::parse("root:provider-b").unwrap();
        let id_a = ClusterId::derive(&a, "seed");
        assert_eq!(id_a, ClusterId::derive(&a, "seed"));
        assert_ne!(id_a, ClusterId::derive(&b, "seed"));
        assert_ne!(id_a, ClusterId::derive(&a, "other"));
        assert_eq!(id_a.as_str().len(), 16);
        assert!(ClusterId::parse(id_a.as_str()).is_some());
        assert!(
            WorkspacePath::parse(id_a.as_str()).is_err(),
            "an id never looks like a path"
        );
    }

    #[test]
    fn file_stem_is_reversible() {
        let p = WorkspacePath::parse("root:kube-bind").unwrap();
        assert_eq!(p.file_stem(), "root.kube-bind");
    }
}
