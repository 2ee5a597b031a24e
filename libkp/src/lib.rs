//! libkp: the Karapace library. Every Karapace program (the `kp-*` plumbing, the
//! `karapace` porcelain) is a thin shell over these modules.
//!
//! The modules are listed bottom-up: each uses only modules listed above it
//! (docs/architecture.md; `tools/check-cycles` fails on an import cycle).

// Ground: no Karapace module below these.

// Unsafe wrappers over system calls no safe crate covers (the one unsafe file).
mod sys;
// Leveled logging to stderr (`KARAPACE_LOG`, -v, --trace).
pub mod log;
// The machine-readable progress stream (`--progress-fd`): JSON lines.
pub mod progress;
// The one date formatter: UTC times as RFC 3339.
pub mod date;
// /proc/self/mountinfo, read.
pub mod mountinfo;
// The stable process exit codes (docs/cli.md).
pub mod exit;

// Content and its store.

// Object ids: blake3 of the canonical bytes (docs/hash-contract.md).
pub mod hash;
// The HTTP client every download goes through (proxies, TLS).
pub mod net;
// Object kinds and their canonical encodings: blob, tree, layer.
pub mod object;
// Package managers inside images: detection, install commands, installed sets.
pub mod pkg;
// The store: directories, objects, locks; store::Error.
pub mod store;
// Manifest, lock, settings, identity (env_id); schema::Error.
pub mod schema;
// Layers: write a directory as a layer, check one out, diff, list; layer::Error.
pub mod layer;
// Small mutable metadata: checksummed JSON files under meta/; meta::Error.
pub mod meta;
// Refs: names for objects, updated atomically; refs::Error.
pub mod refs;
// Revisions (id, prefix, ref, PATH in a tree) to objects; revparse::Error.
pub mod revparse;
// Checking a whole store: objects re-hashed, names present, refs valid; fsck::Error.
pub mod fsck;
// Packs: streams of verified objects, quarantined unpacking, negotiation.
pub mod pack;

// Running things.

// The sandbox: user namespaces, idmaps, overlays, policy; sandbox::Error.
pub mod sandbox;
// The user's configuration file, $XDG_CONFIG_HOME/karapace/config.toml; config::Error.
pub mod config;
// Base images: references, fetch, import as layers; image::Error.
pub mod image;
// Environments: records, names, states, the writable layer, exec; env::Error.
pub mod env;

// What the verbs do.

// Drift: diff, commit, restore, export of the writable layer; drift::Error.
pub mod drift;
// Garbage collection and pruning, protecting every environment; prune::Error.
pub mod prune;
// The build pipeline: resolve, import, install, record; build::Error.
pub mod build;
// Store care: gc, verify, doctor, migrate; care::Error.
pub mod care;
// Remotes: protocol v1's server and client, push and pull; remote::Error.
pub mod remote;
// Exporting environments' applications and programs to the host; app::Error.
pub mod app;

// The crate-level error: wraps every module's error, for callers that want one.
pub mod error;

pub use error::{Error, Result};
pub use hash::ObjectId;
pub use object::Kind;
pub use store::Store;

pub(crate) use store::read_dir_sorted as store_dir_entries;
