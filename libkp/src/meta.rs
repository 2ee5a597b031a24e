//! Small mutable metadata (environment state and the like): JSON files under
//! `meta/`, each wrapped with a BLAKE3 checksum of its canonical body so a torn or
//! edited file is detected on read:
//!
//! `{"b3":"<hex of blake3(canonical JSON of data)>","data":<data>}`

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::hash::ObjectId;
use crate::store::Store;

/// What can go wrong with a metadata file: a bad name, a file that fails its
/// checksum, or the store under it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name}: not a valid metadata name")]
    InvalidName { name: String },
    #[error("corrupt metadata {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::InvalidName { .. } => crate::exit::FAILURE,
            Error::Corrupt { .. } => crate::exit::STORE,
            Error::Store(e) => e.exit_code(),
        }
    }

    /// Wraps an io error on a store path.
    pub fn store(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let wrap = crate::store::Error::store(op, path);
        move |source| Error::Store(wrap(source))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The body the checksum covers: canonical JSON (docs/hash-contract.md), never
/// serde_json's own key order, which `preserve_order` anywhere in the build
/// would change. For the values stored so far the bytes are the same.
fn canonical(value: &Value) -> Vec<u8> {
    crate::schema::canonical::to_string(value).into_bytes()
}

fn check_name(name: &str) -> Result<PathBuf> {
    let ok = !name.is_empty()
        && name.split('/').all(|c| !c.is_empty() && !c.starts_with('.'))
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_./@".contains(&c));
    if !ok {
        return Err(Error::InvalidName { name: name.to_string() });
    }
    Ok(PathBuf::from(format!("{name}.json")))
}

impl Store {
    pub fn meta_path(&self, name: &str) -> Result<PathBuf> {
        Ok(self.root().join("meta").join(check_name(name)?))
    }

    /// Writes metadata atomically and durably.
    pub fn write_meta(&self, name: &str, data: &Value) -> Result<()> {
        let path = self.meta_path(name)?;
        self.make_dir(path.parent().expect("meta/ parent"))?;
        let body = canonical(data);
        let mut out = format!("{{\"b3\":\"{}\",\"data\":", ObjectId::of(&body)).into_bytes();
        out.extend_from_slice(&body);
        out.extend_from_slice(b"}\n");
        Ok(self.write_atomic(&path, &out, 0o644)?)
    }

    /// Reads metadata, `None` when absent; a checksum mismatch is an error.
    pub fn read_meta(&self, name: &str) -> Result<Option<Value>> {
        let path = self.meta_path(name)?;
        match fs::read(&path) {
            Ok(bytes) => verify_meta(&path, &bytes).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::store("read", &path)(e)),
        }
    }

    pub fn remove_meta(&self, name: &str) -> Result<()> {
        let path = self.meta_path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(crate::store::sync_parent(&path)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::store("remove", &path)(e)),
        }
    }
}

/// The data of a metadata file exactly as [`Store::write_meta`] writes it
/// (`{"b3":"<hex>","data":<canonical body>}` and a newline) when its
/// checksum holds over those very bytes: one hash, no parse and
/// re-serialisation. `None` for anything else (a hand edit that reformatted
/// the file, a damaged one), which [`verify_meta`] then judges.
pub fn canonical_body(bytes: &[u8]) -> Option<&[u8]> {
    let (sum, body) = split_canonical(bytes)?;
    (ObjectId::of(body).to_hex().as_bytes() == sum).then_some(body)
}

/// The checksum and the data of a metadata file laid out exactly as
/// [`Store::write_meta`] writes it, the checksum not checked (the caller
/// checked these bytes otherwise).
pub(crate) fn split_canonical(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = bytes.strip_prefix(b"{\"b3\":\"")?;
    let (sum, rest) = rest.split_at_checked(64)?;
    let body = rest.strip_prefix(b"\",\"data\":")?.strip_suffix(b"}\n")?;
    Some((sum, body))
}

/// Checks one metadata file's bytes and returns its data.
pub fn verify_meta(path: &Path, bytes: &[u8]) -> Result<Value> {
    let corrupt = |reason: &str| Error::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(&format!("not JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| corrupt("not a JSON object"))?;
    let sum = obj
        .get("b3")
        .and_then(Value::as_str)
        .ok_or_else(|| corrupt("no \"b3\" checksum"))?;
    let data = obj.get("data").ok_or_else(|| corrupt("no \"data\""))?;
    if obj.len() != 2 {
        return Err(corrupt("unexpected keys beside \"b3\" and \"data\""));
    }
    if ObjectId::of(&canonical(data)).to_hex() != sum {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(data.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let v = serde_json::json!({"state": "built", "name": "x", "n": 3});
        store.write_meta("envs/abc", &v).unwrap();
        assert_eq!(store.read_meta("envs/abc").unwrap(), Some(v));
        let p = store.meta_path("envs/abc").unwrap();
        let text = fs::read_to_string(&p).unwrap().replace("built", "broke");
        fs::write(&p, text).unwrap();
        assert!(matches!(store.read_meta("envs/abc"), Err(Error::Corrupt { .. })));
        assert_eq!(store.read_meta("envs/abc").unwrap_err().exit_code(), crate::exit::STORE);
        let e = store.meta_path("../x").unwrap_err();
        assert_eq!(e.to_string(), "../x: not a valid metadata name");
        assert_eq!(e.exit_code(), crate::exit::FAILURE);
        assert_eq!(store.read_meta("none").unwrap(), None);
    }

    /// The one-hash path takes only what write_meta wrote; a reformatted file
    /// with a good checksum is left to verify_meta, which accepts it, and a
    /// tampered one is refused by both.
    #[test]
    fn canonical_body_only_for_written_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let v = serde_json::json!({"name": "x", "n": 3});
        store.write_meta("envs/abc", &v).unwrap();
        let p = store.meta_path("envs/abc").unwrap();
        let bytes = fs::read(&p).unwrap();
        let body = canonical_body(&bytes).expect("written bytes");
        assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), v);
        let pretty = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&bytes).unwrap()).unwrap();
        assert_eq!(canonical_body(&pretty), None);
        assert_eq!(verify_meta(&p, &pretty).unwrap(), v);
        let tampered = String::from_utf8(bytes).unwrap().replace("\"x\"", "\"y\"");
        assert_eq!(canonical_body(tampered.as_bytes()), None);
        assert!(verify_meta(&p, tampered.as_bytes()).is_err());
    }
}
