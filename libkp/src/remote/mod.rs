//! Remotes: sharing environments between stores over protocol v1
//! (docs/protocol.md). The logic of both sides lives here so every face can
//! use it: [`server::Service`] answers requests (the `karapace-server`
//! binary only binds it to HTTP), [`client::Remote`] asks them, and
//! [`client::push`] / [`client::pull`] are what `karapace push` and `pull` do.

pub mod client;
pub mod config;
pub mod oci;
pub mod server;

pub use client::{fetch, pull, push, send, PullReport, PushReport, Remote};
pub use server::{Reply, Service, Tokens};

/// What a remote operation refused or what failed under it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Meta(#[from] crate::meta::Error),
    #[error(transparent)]
    Refs(#[from] crate::refs::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Pack(#[from] crate::pack::Error),
    #[error(transparent)]
    Env(#[from] crate::env::Error),
    #[error(transparent)]
    Image(#[from] crate::image::Error),
    #[error(transparent)]
    Drift(#[from] crate::drift::Error),
    /// A request's body could not be read (too slow, too large, not text).
    #[error("reading the request: {0}")]
    Body(std::io::Error),
    /// A refusal with its one-line reason (bad name, unknown remote, ...).
    #[error("{0}")]
    Refused(String),
    /// The server could not be reached or the transfer broke.
    #[error("remote {url}: {message}")]
    Net { url: String, message: String },
    /// The server answered with an error status.
    #[error("remote {url}: {status}: {message}")]
    Status { url: String, status: u16, message: String },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Store(e) => e.exit_code(),
            Error::Meta(e) => e.exit_code(),
            Error::Refs(e) => e.exit_code(),
            Error::Config(e) => e.exit_code(),
            Error::Pack(e) => e.exit_code(),
            Error::Env(e) => e.exit_code(),
            Error::Image(e) => e.exit_code(),
            Error::Drift(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Digest algorithm names a TAG may not begin with, so `NAME@TAG` is never
/// read as a pin (`@blake3:`, docs/manifest.md) or an OCI digest (`@sha256:`).
pub const DIGEST_ALGORITHMS: [&str; 4] = ["blake3", "sha256", "sha384", "sha512"];

/// Splits `NAME@TAG` (docs/protocol.md, "Names"): NAME as an environment
/// name (`[A-Za-z0-9_-]{1,64}`), TAG 1 to 128 of `A-Za-z0-9_.-`, not
/// beginning with `.` or `-` nor with a digest algorithm's name.
pub fn parse_name_tag(s: &str) -> Result<(String, String)> {
    let refuse = |why: &str| Err(Error::Refused(format!("{s:?}: {why}")));
    let Some((name, tag)) = s.split_once('@') else {
        return refuse("expected NAME@TAG");
    };
    if crate::env::check_name(name).is_err() {
        return refuse("NAME is 1 to 64 characters of A-Z a-z 0-9 _ -");
    }
    let ok = (1..=128).contains(&tag.len())
        && tag.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
        && !tag.starts_with(['.', '-']);
    if !ok {
        return refuse("TAG is 1 to 128 characters of A-Z a-z 0-9 _ . - not beginning with . or -");
    }
    let lower = tag.to_ascii_lowercase();
    if let Some(alg) = DIGEST_ALGORITHMS.iter().find(|a| lower.starts_with(*a)) {
        return refuse(&format!(
            "a TAG may not begin with a digest algorithm's name ({alg}): NAME@{alg}:... is a digest, not a tag"
        ));
    }
    Ok((name.to_string(), tag.to_string()))
}

/// The ref a `NAME@TAG` is stored under, on the server and in `ls-remote`.
pub fn tag_ref(name: &str, tag: &str) -> String {
    format!("refs/envs/{name}/{tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_tags() {
        assert_eq!(parse_name_tag("web@v1.2").unwrap(), ("web".into(), "v1.2".into()));
        for bad in [
            "web",
            "@v1",
            "web@",
            "we b@v1",
            "web@../x",
            "web@a/b",
            "web@.x",
            "web@-x",
            "web@sha256",
            "web@blake3x",
            "web@SHA512-1",
        ] {
            assert!(parse_name_tag(bad).is_err(), "{bad}");
        }
        crate::refs::check_name(&tag_ref("web", "v1.2")).unwrap();
    }
}
