//! The kube-bind backend.
