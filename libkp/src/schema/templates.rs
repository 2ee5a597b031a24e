//! The presets: the manifests in examples/, built into the binary, under one
//! list. `karapace new --template`/`--preset` writes one, `preset list|show`
//! shows them and the D-Bus service's ListPresets lists them. Being the example
//! files themselves, the documented examples and what `new` writes cannot
//! drift apart (t2000 parses every one).

pub const PRESETS: &[(&str, &str)] = &[
    ("minimal", include_str!("../../../examples/minimal.toml")),
    ("dev", include_str!("../../../examples/dev.toml")),
    ("rust-dev", include_str!("../../../examples/rust-dev.toml")),
    ("gui-dev", include_str!("../../../examples/gui-dev.toml")),
    ("ubuntu-dev", include_str!("../../../examples/ubuntu-dev.toml")),
    ("dev-python", include_str!("../../../examples/dev-python.toml")),
    ("gaming", include_str!("../../../examples/gaming.toml")),
];

/// Other names a preset goes by (the reference system's).
pub const ALIASES: &[(&str, &str)] = &[("dev-rust", "rust-dev"), ("gui-app", "gui-dev")];

/// The preset `new` writes when none is named.
pub const DEFAULT: &str = "minimal";

/// The preset `name` (or an alias of it): its own name and its manifest.
pub fn find(name: &str) -> Option<(&'static str, &'static str)> {
    let name = ALIASES.iter().find(|(a, _)| *a == name).map_or(name, |(_, to)| *to);
    PRESETS.iter().find(|(n, _)| *n == name).copied()
}

/// The aliases of the preset `name`.
pub fn aliases_of(name: &str) -> Vec<&'static str> {
    ALIASES.iter().filter(|(_, to)| *to == name).map(|(a, _)| *a).collect()
}

/// A preset's description: its leading comment lines, joined.
pub fn description(text: &str) -> String {
    text.lines()
        .map_while(|l| l.strip_prefix('#'))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A preset's summary: its first comment line.
pub fn summary(text: &str) -> &str {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix('#'))
        .map_or("", str::trim)
}
