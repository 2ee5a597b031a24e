//! Any bytes: the lock parser returns a value or an error, never panics; a
//! lock it accepts renders to TOML that parses back to the same lock.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use libkp::schema::Lock;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new("fuzz.lock");
    if let Ok(lock) = Lock::parse(text, file) {
        let _ = lock.check_integrity(file);
        let again = Lock::parse(&lock.to_toml(), file).expect("a rendered lock parses");
        assert_eq!(again, lock);
    }
});
