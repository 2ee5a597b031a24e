//! Properties of the schema: normalisation is idempotent, the identity ignores
//! formatting, and every locked field feeds the identity.

use std::path::Path;

use proptest::prelude::*;

use super::lock::{Lock, LockedBase, LockedPackage};
use super::manifest::{self, Manifest};
use super::resolve::{resolve, KnownImages, KnownPackages};
use super::Error;

fn parse(text: &str) -> Manifest {
    manifest::parse(text, Path::new("karapace.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn err(text: &str) -> String {
    match manifest::parse(text, Path::new("m.toml")) {
        Err(e @ Error::Manifest { .. }) => e.to_string(),
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

fn lock_of(m: &Manifest) -> Lock {
    let images = KnownImages {
        explicit: Some("ab".repeat(32)),
        previous: None,
    };
    let closure = m.settings.system.packages.iter().map(|n| LockedPackage {
        name: n.clone(),
        version: "1.0".into(),
        arch: "amd64".into(),
    });
    resolve(
        m,
        &images,
        &KnownPackages {
            explicit: Some(closure.collect()),
            previous: None,
        },
    )
    .unwrap()
}

#[test]
fn errors_name_file_line_column_key() {
    let head = "manifest_version = 1\n[base]\nimage = \"x\"\n";
    assert_eq!(
        err(&format!("{head}[system]\npackages = [\"a\", 1]\n")),
        "m.toml:5:18: system.packages[1]: invalid type: integer `1`, expected a string"
    );
    assert!(err(&format!("{head}[system]\npkgs = []\n")).starts_with("m.toml:5:1: system.pkgs: unknown field `pkgs`"));
    assert!(err(&format!("{head}[runtime]\nbackend = \"docker\"\n"))
        .starts_with("m.toml:5:11: runtime.backend: unknown backend"));
    assert!(err(&format!("{head}[mounts]\nx = \"/a\"\n")).starts_with("m.toml:5:5: mounts.x: mount \"/a\""));
    assert!(err("manifest_version = 1\n[base]\nimage = \" \"\n").starts_with("m.toml:3:9: base.image: empty image"));
    assert_eq!(err("manifest_version = 1\n"), "m.toml:1:1: base: missing field `base`");
    assert!(err(&format!("{head}[runtime.resource_limits]\nmemory_limit_mb = -1\n"))
        .contains("runtime.resource_limits.memory_limit_mb"));
}

#[test]
fn package_names_outside_every_managers_grammar_are_manifest_errors() {
    let head = "manifest_version = 1\n[base]\nimage = \"x\"\n[system]\n";
    for bad in ["jq=1.6", "core/jq", "lib*", "-y", "pkgconfig(x)"] {
        let e = err(&format!("{head}packages = [\"curl\", \"{bad}\"]\n"));
        assert!(
            e.starts_with(&format!(
                "m.toml:5:21: system.packages[1]: invalid package name \"{bad}\": "
            )),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let m = parse(&format!(
        "{head}packages = [\"g++\", \"libstdc++6\", \"python3.11\", \"gcc-c++\"]\n"
    ));
    assert_eq!(
        m.settings.system.packages,
        ["g++", "gcc-c++", "libstdc++6", "python3.11"]
    );
}

#[test]
fn lock_package_names_are_checked_too() {
    let m = parse("manifest_version = 1\n[base]\nimage = \"x\"\n[system]\npackages = [\"a\"]\n");
    let text = lock_of(&m).to_toml().replace("name = \"a\"", "name = \"a*\"");
    let e = Lock::parse(&text, Path::new("l")).unwrap_err().to_string();
    assert!(e.contains("packages[0].name: invalid package name \"a*\""), "{e}");
}

#[test]
fn implication_rules_and_explicit_overrides() {
    let m = parse("manifest_version = 1\n[base]\nimage = \"x\"\n[gui]\napps = [\"a\"]\n[hardware]\naudio = true\n[integration]\nx11 = false\n");
    let i = m.settings.integration;
    assert!(i.wayland && !i.x11 && i.fonts && i.themes && i.pipewire && i.pulseaudio && i.sound_devices);
    assert!(!i.home && !i.ssh_agent && !i.dbus_session && !i.gpu_devices);
}

#[test]
fn drift_lists_fields() {
    let a = parse("manifest_version = 1\n[base]\nimage = \"x\"\n[system]\npackages = [\"a\"]\n");
    let b = parse(
        "manifest_version = 1\n[base]\nimage = \"y\"\n[system]\npackages = [\"a\", \"b\"]\n[hardware]\ngpu = true\n",
    );
    let fields: Vec<String> = lock_of(&a).drift(&b).into_iter().map(|d| d.field).collect();
    assert_eq!(
        fields,
        [
            "base.image",
            "hardware.gpu",
            "integration.gpu_devices",
            "system.packages"
        ]
    );
    assert!(lock_of(&a).drift(&a).is_empty());
}

#[test]
fn lock_round_trips_and_checks_integrity() {
    let m = parse(
        "manifest_version = 1\n[base]\nimage = \"x\"\n[system]\npackages = [\"b\", \"a\"]\n[mounts]\nw = \".:/w:ro\"\n",
    );
    let l = lock_of(&m);
    let text = l.to_toml();
    let back = Lock::parse(&text, Path::new("karapace.lock")).unwrap();
    assert_eq!(back, l);
    back.check_integrity(Path::new("karapace.lock")).unwrap();
    let tampered = Lock::parse(&text.replace("version = \"1.0\"", "version = \"1.1\""), Path::new("l")).unwrap();
    assert!(matches!(
        tampered.check_integrity(Path::new("l")),
        Err(Error::Integrity { .. })
    ));
}

/// A manifest's content, to be written out in many textual forms.
#[derive(Debug, Clone)]
struct Spec {
    image: String,
    packages: Vec<String>,
    apps: Vec<String>,
    gpu: bool,
    audio: bool,
    home: Option<bool>,
    mounts: Vec<(String, String)>,
    backend: String,
    memory: Option<u32>,
}

fn spec() -> impl Strategy<Value = Spec> {
    let name = "[a-z][a-z0-9+.-]{0,8}";
    (
        prop_oneof![
            Just("debian/bookworm".to_string()),
            "[a-z]{1,6}/[0-9]{2}\\.[0-9]{2}",
            "https://[a-z]{3}\\.example/[A-Za-z]{1,8}\\.tar\\.xz"
        ],
        prop::collection::vec(name, 0..6),
        prop::collection::vec(name, 0..3),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(any::<bool>()),
        prop::collection::btree_map(
            "[a-z][a-z0-9_]{0,6}",
            ("(~/|/|\\./)[a-z]{1,5}", "[a-z]{1,5}", prop::bool::ANY),
            0..3,
        ),
        prop_oneof![Just("namespace"), Just("OCI"), Just("Mock"), Just(" oci ")].prop_map(String::from),
        prop::option::of(1u32..100000),
    )
        .prop_map(
            |(image, packages, apps, gpu, audio, home, mounts, backend, memory)| Spec {
                image,
                packages,
                apps,
                gpu,
                audio,
                home,
                // Distinct container paths: the label makes them unique.
                mounts: mounts
                    .into_iter()
                    .map(|(l, (h, c, ro))| {
                        let spec = format!("{h}:/{c}/{l}{}", if ro { ":ro" } else { "" });
                        (l, spec)
                    })
                    .collect(),
                backend,
                memory,
            },
        )
}

/// Textual freedom that must not matter: section order, blank lines, comments,
/// spacing, quote style, duplicate and padded list entries, inline tables.
#[derive(Debug, Clone)]
struct Style {
    order: Vec<usize>,
    comments: bool,
    pad: bool,
    literal: bool,
    dup: bool,
    inline_base: bool,
}

fn style() -> impl Strategy<Value = Style> {
    (
        Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(order, comments, pad, literal, dup, inline_base)| Style {
            order,
            comments,
            pad,
            literal,
            dup,
            inline_base,
        })
}

fn render(s: &Spec, st: &Style) -> String {
    let q = |v: &str| {
        if st.literal && !v.contains('\'') {
            format!("'{v}'")
        } else {
            format!("{v:?}")
        }
    };
    let eq = if st.pad { "   =   " } else { "=" };
    let c = |t: &str| if st.comments { format!("  # {t}\n") } else { "\n".into() };
    let list = |v: &[String]| {
        let mut items: Vec<String> = v
            .iter()
            .map(|x| if st.pad { q(&format!(" {x}")) } else { q(x) })
            .collect();
        if st.dup {
            items.extend(v.iter().rev().map(|x| q(x)));
        }
        format!("[{}]", items.join(if st.pad { " ,\n  " } else { "," }))
    };
    let sections = [
        if st.inline_base {
            format!("base = {{ image{eq}{} }}{}", q(&s.image), c("base"))
        } else {
            format!("[base]{}image{eq}{}\n", c("base"), q(&s.image))
        },
        format!("[system]\npackages{eq}{}{}", list(&s.packages), c("pkgs")),
        format!("[gui]\napps{eq}{}\n", list(&s.apps)),
        format!("[hardware]\naudio{eq}{}\ngpu{eq}{}\n", s.audio, s.gpu),
        {
            let mut t = "[mounts]\n".to_string();
            for (l, m) in s.mounts.iter().rev() {
                t += &format!("{l}{eq}{}{}", q(m), c("mount"));
            }
            if let Some(h) = s.home {
                t += &format!("\n[integration]\nhome{eq}{h}\n");
            }
            t
        },
        {
            let mut t = format!("[runtime]\nbackend{eq}{}\n", q(&s.backend));
            if let Some(m) = s.memory {
                t += &format!("[runtime.resource_limits]\nmemory_limit_mb{eq}{m}\n");
            }
            t
        },
    ];
    let mut out = format!(
        "{}manifest_version{eq}1\n",
        if st.comments { "# a manifest\n\n" } else { "" }
    );
    // A dotted/inline `base` must come before any [table] header.
    if st.inline_base {
        out += &sections[0];
    }
    for &i in &st.order {
        if !(i == 0 && st.inline_base) {
            out += "\n";
            out += &sections[i];
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalisation_is_idempotent(s in spec(), st in style()) {
        let m = parse(&render(&s, &st));
        let again = parse(&m.to_toml());
        prop_assert_eq!(&again, &m);
        prop_assert_eq!(again.to_toml(), m.to_toml());
    }

    #[test]
    fn env_id_ignores_formatting(s in spec(), a in style(), b in style()) {
        let (ta, tb) = (render(&s, &a), render(&s, &b));
        let (la, lb) = (lock_of(&parse(&ta)), lock_of(&parse(&tb)));
        prop_assert_eq!(&la.env_id, &lb.env_id, "\n{}\n----\n{}", ta, tb);
        // Nor does the lock's own layout: its tables in reverse order still
        // carry the same identity.
        let text = la.to_toml();
        let mut blocks: Vec<&str> = text.split("\n\n").collect();
        blocks[1..].reverse();
        let back = Lock::parse(&blocks.join("\n\n"), Path::new("l")).unwrap();
        prop_assert!(back.check_integrity(Path::new("l")).is_ok());
    }

    #[test]
    fn every_locked_field_feeds_env_id(s in spec(), field in 0usize..16) {
        let l = lock_of(&parse(&render(&s, &style_plain())));
        let mut base = l.base.clone();
        let mut pkgs = l.packages.clone();
        let mut st = l.settings.clone();
        match field {
            0 => base.image.push('x'),
            1 => base.digest = "cd".repeat(32),
            2 => pkgs.push(LockedPackage { name: "zz-extra".into(), version: "1".into(), arch: "all".into() }),
            3 => st.system.packages.push("zz-extra".into()),
            4 => st.gui.apps.push("zz-app".into()),
            5 => st.hardware.gpu = !st.hardware.gpu,
            6 => st.hardware.audio = !st.hardware.audio,
            7 => st.integration.home = !st.integration.home,
            8 => st.integration.ssh_agent = !st.integration.ssh_agent,
            9 => st.integration.sound_devices = !st.integration.sound_devices,
            10 => { st.mounts.insert("zz".into(), super::Mount { host: "/h".into(), container: "/zz".into(), read_only: false }); }
            11 => st.runtime.backend = if st.runtime.backend == super::Backend::Mock { super::Backend::Oci } else { super::Backend::Mock },
            12 => st.runtime.network_isolation = !st.runtime.network_isolation,
            13 => st.runtime.resource_limits.cpu_shares = Some(st.runtime.resource_limits.cpu_shares.unwrap_or(1) + 1),
            14 => st.runtime.resource_limits.memory_limit_mb = Some(st.runtime.resource_limits.memory_limit_mb.unwrap_or(1) + 1),
            _ => st.integration.fonts = !st.integration.fonts,
        }
        let changed = Lock::new(base, pkgs, st);
        prop_assert_ne!(changed.env_id, l.env_id);
    }
}

fn style_plain() -> Style {
    Style {
        order: (0..6).collect(),
        comments: false,
        pad: false,
        literal: false,
        dup: false,
        inline_base: false,
    }
}

#[test]
fn lock_parse_ignores_entry_order() {
    let m = parse("manifest_version = 1\n[base]\nimage = \"x\"\n[system]\npackages = [\"a\", \"b\"]\n");
    let l = lock_of(&m);
    let text = l
        .to_toml()
        .replace("packages = [\"a\", \"b\"]", "packages = [\"b\", \"a\"]");
    let swapped = text
        .replacen("name = \"a\"", "name = \"@\"", 1)
        .replacen("name = \"b\"", "name = \"a\"", 1)
        .replacen("name = \"@\"", "name = \"b\"", 1);
    let back = Lock::parse(&swapped, Path::new("l")).unwrap();
    back.check_integrity(Path::new("l")).unwrap();
    assert_eq!(
        back.base,
        LockedBase {
            image: "x".into(),
            digest: "ab".repeat(32),
            oci_digest: None,
        }
    );
}

#[test]
fn oci_digest_is_kept_but_not_identity() {
    let m = parse("manifest_version = 1\n[base]\nimage = \"oci://h.io/r:1\"\n");
    let plain = lock_of(&m);
    let d = format!("sha256:{}", "cd".repeat(32));
    let with = Lock::new(
        LockedBase {
            oci_digest: Some(d.clone()),
            ..plain.base.clone()
        },
        Vec::new(),
        plain.settings.clone(),
    );
    assert_eq!(with.env_id, plain.env_id);
    let text = with.to_toml();
    assert!(text.contains(&format!("oci_digest = \"{d}\"\n")), "{text}");
    let back = Lock::parse(&text, Path::new("l")).unwrap();
    back.check_integrity(Path::new("l")).unwrap();
    assert_eq!(back.base.oci_digest.as_deref(), Some(d.as_str()));
    assert!(!plain.to_toml().contains("oci_digest"));
    let bad = text.replace(&d, "sha256:abc");
    let e = Lock::parse(&bad, Path::new("l")).unwrap_err().to_string();
    assert!(e.contains("oci_digest") && e.contains("64 lowercase hex"), "{e}");
}

#[test]
fn oci_runtime_key_is_part_of_the_identity_and_only_with_oci() {
    let head = "manifest_version = 1\n[base]\nimage = \"x\"\n";
    let id = |extra: &str| lock_of(&parse(&format!("{head}{extra}"))).env_id;
    // Other backends keep the env_id they had before the key existed: the
    // key is absent from their canonical form.
    let native = lock_of(&parse(head));
    let json = serde_json::to_string(&native.settings.runtime).unwrap();
    assert!(!json.contains("\"runtime\""), "{json}");
    assert!(native.settings.runtime.runtime.is_none());
    // With oci it is always there, `auto` unless given, and changes env_id.
    let auto = id("[runtime]\nbackend = \"oci\"\n");
    assert_eq!(auto, id("[runtime]\nbackend = \"oci\"\nruntime = \" Auto \"\n"));
    assert_ne!(auto, id("[runtime]\nbackend = \"oci\"\nruntime = \"runc\"\n"));
    assert_ne!(auto, native.env_id);
    let m = parse(&format!("{head}[runtime]\nbackend = \"oci\"\nruntime = \"crun\"\n"));
    assert!(m
        .to_toml()
        .contains("[runtime]\nbackend = \"oci\"\nruntime = \"crun\"\n"));
    let l = lock_of(&m);
    let back = Lock::parse(&l.to_toml(), Path::new("karapace.lock")).unwrap();
    assert_eq!(back.settings.runtime.runtime, Some(super::OciRuntime::Crun));
    assert!(
        err(&format!("{head}[runtime]\nbackend = \"oci\"\nruntime = \"docker\"\n")).starts_with(
            "m.toml:6:11: runtime.runtime: unknown OCI runtime \"docker\"; expected one of runc, crun, youki, auto"
        )
    );
    assert!(err(&format!("{head}[runtime]\nruntime = \"runc\"\n"))
        .starts_with("m.toml:5:11: runtime.runtime: applies only with backend = \"oci\""));
}
