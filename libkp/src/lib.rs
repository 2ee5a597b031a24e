//! libkp: the Karapace library. Every Karapace program (the `kp-*` plumbing, the
//! `karapace` porcelain) is a thin shell over these modules.

pub mod build;
pub mod config;
pub mod date;
pub mod env;
pub mod error;
pub mod exit;
pub mod fsck;
pub mod hash;
pub mod image;
pub mod layer;
pub mod log;
pub mod meta;
pub mod mountinfo;
pub mod net;
pub mod object;
pub mod pkg;
pub mod prune;
pub mod refs;
pub mod revparse;
pub mod store;
mod sys;

pub use error::{Error, Result};
pub use hash::ObjectId;
pub use object::Kind;
pub use store::Store;

pub(crate) use store::read_dir_sorted as store_dir_entries;
pub mod care;
pub mod drift;
pub mod sandbox;
pub mod schema;
