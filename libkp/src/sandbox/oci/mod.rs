//! The OCI backend: an environment's plan (plan.rs) run by an OCI runtime
//! (runc, crun or youki) instead of the native executor. The root is
//! mounted as the bundle's `rootfs` and `config.json` is written from the
//! plan, so both backends set up the same sandbox (docs/sandbox.md,
//! "Backends").

mod run;
pub mod runtime;
pub mod spec;

pub use run::run;
pub use runtime::{choose, find, probe, Kind, Runtime};
