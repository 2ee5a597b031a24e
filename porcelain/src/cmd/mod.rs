//! One file per verb: parse its options, call libkp, print.

pub mod image;
pub mod init;
pub mod inspect;
pub mod lifecycle;
pub mod list;
pub mod new;
pub mod oci;
pub mod pin;
pub mod preset;
pub mod quick;
pub mod remote;
pub mod rename;

use crate::ctx::{Fail, Result};

/// The one ENV argument of verbs that act on an environment.
pub fn one_env_arg(p: &mut lexopt::Parser) -> Result<String> {
    let mut env = None;
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Value(v) if env.is_none() => env = Some(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    env.ok_or_else(|| Fail::Usage("missing ENV (an id, short id, unique prefix or name)".into()))
}
pub mod app;
pub mod build;
pub mod care;
pub mod diff;
pub mod doctor;
pub mod exec;
pub mod export;
pub mod snapshot;
pub mod stop;
pub mod trust;
pub mod tui;
pub mod verify;
