//! The kube-bind controllers, on the generic runtime of `crate::runtime`.

pub mod status;
