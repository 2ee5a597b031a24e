//! `karapace quick`: a manifest made from a preset, an image and packages,
//! kept in the store under its own hash (docs/store-format.md, "Quick
//! manifests"), built like any other, and found again without resolving.
//!
//! `quick/<key>/` holds `karapace.toml` (key = blake3 of its text),
//! `karapace.lock` (written by the build, as beside any manifest) and `env`,
//! the env_id it built: a second `quick` with the same arguments composes the
//! same text, reads `env` and the record it names, and runs: no parse of the
//! lock, no resolution, no lock taken.

use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, Table, Value};

use super::{build, BuildOptions, Built, Error, Result, Runner};
use crate::env::EnvRecord;
use crate::hash::ObjectId;
use crate::schema;
use crate::store::Store;

/// What `quick` was asked for, beside the preset's manifest text.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    /// The base image; a relative path is made absolute against `cwd`.
    pub image: Option<String>,
    /// Packages added to the preset's `system.packages`.
    pub packages: Vec<String>,
    /// `HOST:CONTAINER[:ro]` mounts added to the preset's `[mounts]`, as
    /// `quick1`, `quick2`, ...; relative hosts are relative to the caller's
    /// directory when the environment runs.
    pub mounts: Vec<String>,
}

/// A composed quick manifest: its text and the key it is kept under.
#[derive(Clone, Debug)]
pub struct Quick {
    pub key: String,
    pub text: String,
}

impl Quick {
    /// `quick/<key>` in `store`.
    pub fn dir(&self, store: &Store) -> PathBuf {
        store.path("quick").join(&self.key)
    }

    pub fn manifest_path(&self, store: &Store) -> PathBuf {
        self.dir(store).join(schema::MANIFEST_FILE)
    }
}

/// The manifest `template` (a preset's text) with `spec` applied, checked as
/// any manifest is (a bad package name or mount is refused here, before the
/// store is touched).
pub fn compose(template: &str, spec: &Spec, cwd: &Path) -> Result<Quick> {
    let bad = |field: &str, reason: String| -> Error {
        schema::Error::Manifest {
            at: schema::Location {
                file: PathBuf::from("quick"),
                line: 1,
                column: 1,
                key: Some(field.to_string()).filter(|f| !f.is_empty()),
            },
            message: reason,
        }
        .into()
    };
    let mut doc: DocumentMut = template
        .parse()
        .map_err(|e: toml_edit::TomlError| bad("", e.to_string()))?;
    if let Some(image) = &spec.image {
        let image = match crate::image::parse(image) {
            Ok(crate::image::Reference::Path(p)) if p.is_relative() => {
                cwd.join(p).components().collect::<PathBuf>().display().to_string()
            }
            _ => image.clone(),
        };
        let text = schema::pin::rewrite_image(&doc.to_string(), &image).map_err(|r| bad("base.image", r))?;
        doc = text.parse().map_err(|e: toml_edit::TomlError| bad("", e.to_string()))?;
    }
    if !spec.packages.is_empty() {
        let mut wanted = spec.packages.clone();
        wanted.sort();
        wanted.dedup();
        let system = table(&mut doc, "system").ok_or_else(|| bad("system", "is not a table".into()))?;
        let packages = system
            .entry("packages")
            .or_insert(Item::Value(Value::Array(Array::new())))
            .as_array_mut()
            .ok_or_else(|| bad("system.packages", "is not an array".into()))?;
        for p in wanted {
            packages.push(p);
        }
    }
    if !spec.mounts.is_empty() {
        let mounts = table(&mut doc, "mounts").ok_or_else(|| bad("mounts", "is not a table".into()))?;
        for (i, m) in spec.mounts.iter().enumerate() {
            mounts.insert(&format!("quick{}", i + 1), toml_edit::value(m.as_str()));
        }
    }
    let text = doc.to_string();
    let key = ObjectId::of(text.as_bytes()).to_hex();
    // Parsed under the name it will have, so messages name a real path.
    schema::manifest::parse(
        &text,
        Path::new("quick").join(&key).join(schema::MANIFEST_FILE).as_path(),
    )?;
    Ok(Quick { key, text })
}

/// The table `name` at the top of `doc`, made when missing.
fn table<'a>(doc: &'a mut DocumentMut, name: &str) -> Option<&'a mut Table> {
    doc.entry(name).or_insert(Item::Table(Table::new())).as_table_mut()
}

/// The environment `quick` built before for these arguments, if it still
/// exists: two small reads, nothing resolved.
pub fn lookup(store: &Store, quick: &Quick) -> Result<Option<EnvRecord>> {
    let path = quick.dir(store).join("env");
    let id = match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::store("read", &path)(e)),
    };
    if !schema::image::is_digest(&id) {
        // Not ours: built again below, which rewrites it.
        return Ok(None);
    }
    Ok(store.read_env(&id)?)
}

/// Writes the manifest into `quick/<key>/` and builds it (reusing what
/// exists, as `build` does), then records the env_id for [`lookup`]. When the
/// build fails, a directory this call made is removed again: a refused
/// `quick` leaves the store as it was.
pub fn build_quick(store: &Store, quick: &Quick, opts: &BuildOptions, runner: &dyn Runner) -> Result<Built> {
    let top = store.path("quick");
    let dir = quick.dir(store);
    let made_top = !top.exists();
    let made = !dir.exists();
    store.make_dir(&dir)?;
    let manifest = quick.manifest_path(store);
    let built = store
        .write_atomic(&manifest, quick.text.as_bytes(), 0o644)
        .map_err(Error::from)
        .and_then(|()| build(store, &manifest, opts, runner));
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            if made {
                let _ = std::fs::remove_dir_all(&dir);
            }
            if made_top {
                let _ = std::fs::remove_dir(&top);
            }
            return Err(e);
        }
    };
    let env = format!("{}\n", built.record.env_id);
    store.write_atomic(&dir.join("env"), env.as_bytes(), 0o644)?;
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "# a preset\nmanifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n";

    fn spec(image: Option<&str>, packages: &[&str], mounts: &[&str]) -> Spec {
        Spec {
            image: image.map(str::to_string),
            packages: packages.iter().map(|s| s.to_string()).collect(),
            mounts: mounts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn compose_applies_image_packages_and_mounts() {
        let q = compose(
            MINIMAL,
            &spec(Some("bb"), &["jq", "git", "jq"], &[".:/work"]),
            Path::new("/c"),
        )
        .unwrap();
        let m = schema::manifest::parse(&q.text, Path::new("x/karapace.toml")).unwrap();
        assert_eq!(m.base.reference, "bb");
        assert_eq!(
            m.settings.requested_packages(),
            vec!["git".to_string(), "jq".to_string()]
        );
        assert!(q.text.contains("quick1 = \".:/work\""), "{}", q.text);
        assert!(q.text.starts_with("# a preset\n"));
    }

    #[test]
    fn same_arguments_same_key_in_any_order() {
        let a = compose(MINIMAL, &spec(None, &["a", "b"], &[]), Path::new("/x")).unwrap();
        let b = compose(MINIMAL, &spec(None, &["b", "a"], &[]), Path::new("/y")).unwrap();
        assert_eq!(a.key, b.key);
        let c = compose(MINIMAL, &spec(None, &["a"], &[]), Path::new("/x")).unwrap();
        assert_ne!(a.key, c.key);
        assert_eq!(a.key, ObjectId::of(a.text.as_bytes()).to_hex());
    }

    #[test]
    fn relative_image_paths_are_made_absolute() {
        let q = compose(MINIMAL, &spec(Some("./rootfs"), &[], &[]), Path::new("/home/u/p")).unwrap();
        assert!(q.text.contains("image = \"/home/u/p/rootfs\""), "{}", q.text);
        let q = compose(MINIMAL, &spec(Some("debian/bookworm"), &[], &[]), Path::new("/p")).unwrap();
        assert!(q.text.contains("image = \"debian/bookworm\""));
    }

    #[test]
    fn bad_input_is_refused_by_the_manifest_rules() {
        let e = compose(MINIMAL, &spec(None, &["bad name"], &[]), Path::new("/")).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::MANIFEST, "{e}");
        assert!(e.to_string().contains("system.packages"), "{e}");
        let e = compose(MINIMAL, &spec(None, &[], &["nocolon"]), Path::new("/")).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::MANIFEST, "{e}");
    }

    #[test]
    fn build_failure_leaves_no_quick_directory() {
        let t = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&t.path().join("s")).unwrap();
        let q = compose(MINIMAL, &spec(Some("no-such-image"), &[], &[]), Path::new("/")).unwrap();
        struct Never;
        impl Runner for Never {
            fn run(&self, _: &super::super::Job) -> Result<super::super::RunOutput> {
                unreachable!("nothing runs for an unknown image")
            }
            fn ids(&self) -> Result<crate::layer::IdShift> {
                unreachable!()
            }
        }
        let opts = BuildOptions {
            offline: true,
            ..BuildOptions::default()
        };
        assert!(build_quick(&store, &q, &opts, &Never).is_err());
        assert!(!store.path("quick").exists());
        assert!(lookup(&store, &q).unwrap().is_none());
    }
}
