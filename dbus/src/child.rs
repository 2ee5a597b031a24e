//! Runs the `karapace` binary as a child process for everything that needs a
//! single-threaded process or a re-exec (docs/sandbox.md): its `--json`
//! document on stdout and its exit status are the interface (docs/cli.md);
//! stderr is only relayed, never parsed.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::error::{Error, Result};

/// `$KARAPACE_BIN`, else the `karapace` next to this binary.
pub fn karapace_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("KARAPACE_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| Error::Failed(format!("finding karapace-dbus's own path: {e}")))?;
    let bin = exe.with_file_name("karapace");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(Error::Failed(format!(
            "no karapace binary at {} (install it there or set KARAPACE_BIN)",
            bin.display()
        )))
    }
}

/// `karapace --store STORE --json ARGS...`, stdin from /dev/null, in its own
/// process group so a cancel reaches whatever it re-executes.
pub fn spawn(store: &Path, args: &[OsString]) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let bin = karapace_bin()?;
    Command::new(&bin)
        .arg("--store")
        .arg(store)
        .arg("--json")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Failed(format!("running {}: {e}", bin.display())))
}

/// What a finished child gave.
pub struct Outcome {
    /// The exit status; 128+N when killed by signal N.
    pub code: i32,
    /// Its `--json` document, when stdout held one.
    pub json: Option<serde_json::Value>,
    /// Its last non-empty stderr line: the message for an error.
    pub last_line: String,
}

impl Outcome {
    /// Ok with the document for status 0, else the error the status names.
    pub fn into_result(self) -> Result<serde_json::Value> {
        if self.code == 0 {
            return Ok(self.json.unwrap_or(serde_json::Value::Null));
        }
        let msg = if self.last_line.is_empty() {
            format!("karapace exited with status {}", self.code)
        } else {
            self.last_line
        };
        Err(Error::from_exit(self.code, msg))
    }
}

/// Waits for CHILD, calling LINE for each line it writes on stderr.
pub fn wait(mut child: Child, mut line: impl FnMut(&str)) -> Result<Outcome> {
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let mut last_line = String::new();
    if let Some(stderr) = child.stderr.take() {
        for l in BufReader::new(stderr).lines() {
            let Ok(l) = l else { break };
            let l = l.trim_end().to_string();
            if !l.is_empty() {
                line(&l);
                last_line = l;
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::Failed(format!("waiting for karapace: {e}")))?;
    let out = reader.join().unwrap_or_default();
    let code = {
        use std::os::unix::process::ExitStatusExt;
        status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    };
    let json = serde_json::from_slice(&out).ok();
    Ok(Outcome { code, json, last_line })
}

/// Runs `karapace ARGS` to the end (for the short operations).
pub fn run(store: &Path, args: Vec<OsString>) -> Result<serde_json::Value> {
    let child = spawn(store, &args)?;
    wait(child, |_| {})?.into_result()
}
