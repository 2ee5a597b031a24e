//! The manifest templates `karapace new --template` writes and the D-Bus
//! service's ListPresets lists. They are the files in examples/, so the
//! documented examples and what `new` writes cannot drift apart.

pub const TEMPLATES: &[(&str, &str)] = &[
    ("minimal", include_str!("../../../examples/minimal.toml")),
    ("dev", include_str!("../../../examples/dev.toml")),
    ("gui-dev", include_str!("../../../examples/gui-dev.toml")),
    ("rust-dev", include_str!("../../../examples/rust-dev.toml")),
    ("ubuntu-dev", include_str!("../../../examples/ubuntu-dev.toml")),
];

/// A template's description: its leading comment lines, joined.
pub fn description(text: &str) -> String {
    text.lines()
        .map_while(|l| l.strip_prefix('#'))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}
