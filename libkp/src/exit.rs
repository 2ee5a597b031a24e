//! Stable process exit codes shared by every Karapace binary (docs/cli.md).

pub const OK: i32 = 0;
/// The operation failed: not found, refused, conflict, problems found.
pub const FAILURE: i32 = 1;
/// The manifest or lock is invalid.
pub const MANIFEST: i32 = 2;
/// The store is missing, of another version, corrupt, or cannot be written.
pub const STORE: i32 = 3;
/// The command line is wrong (sysexits' EX_USAGE).
pub const USAGE: i32 = 64;
/// The sandbox could not start a command (as docker and podman use it).
pub const SANDBOX: i32 = 125;
