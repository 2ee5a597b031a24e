//! Any bytes: the manifest parser returns a value or an error, never panics;
//! a manifest it accepts survives a trip through its normal form unchanged.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use libkp::schema::manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new("fuzz.toml");
    if let Ok(m) = manifest::parse(text, file) {
        let again = manifest::parse(&m.to_toml(), file).expect("the normal form parses");
        assert_eq!(again, m);
        let _ = libkp::schema::canonical::to_string(&m.to_json());
    }
});
