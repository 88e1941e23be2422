//! kube-bind.io API types.
