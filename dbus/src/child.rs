//! Runs the `karapace` binary as a child process for everything that needs a
//! single-threaded process or a re-exec (docs/sandbox.md): its `--json`
//! document on stdout and its exit status are the interface (docs/cli.md);
//! stderr is only relayed, never parsed.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
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

/// A started child, and the read end of its progress stream when it has one.
pub struct Spawned {
    pub child: Child,
    progress: Option<OwnedFd>,
}

/// `karapace --store STORE --json [--progress-fd 3] ARGS...`, stdin from
/// /dev/null, in its own process group so a cancel reaches whatever it
/// re-executes. With `progress`, the child writes its progress stream
/// (docs/cli.md, "Progress") on a pipe of its own.
pub fn spawn(store: &Path, args: &[OsString], progress: bool) -> Result<Spawned> {
    use std::os::unix::process::CommandExt;
    let bin = karapace_bin()?;
    let mut cmd = Command::new(&bin);
    cmd.arg("--store").arg(store).arg("--json");
    let reader = if progress {
        let r = libkp::progress::attach(&mut cmd).map_err(|e| Error::Failed(format!("a progress pipe: {e}")))?;
        cmd.arg("--progress-fd").arg(libkp::progress::CHILD_FD.to_string());
        Some(r)
    } else {
        None
    };
    let child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Failed(format!("running {}: {e}", bin.display())))?;
    // The write end went with the Command's pre-exec hook: dropped with it.
    drop(cmd);
    Ok(Spawned {
        child,
        progress: reader,
    })
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

/// Waits for the child, calling LINE for each line it writes on stderr and
/// PROGRESS (from another thread) for each line of its progress stream; a
/// progress line that does not parse is skipped.
pub fn wait(
    spawned: Spawned,
    mut line: impl FnMut(&str),
    progress: impl FnMut(libkp::progress::Line) + Send,
) -> Result<Outcome> {
    let Spawned {
        mut child,
        progress: progress_fd,
    } = spawned;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let mut last_line = String::new();
    let status = std::thread::scope(|scope| {
        if let Some(fd) = progress_fd {
            let mut progress = progress;
            scope.spawn(move || {
                for l in BufReader::new(std::fs::File::from(fd)).lines() {
                    let Ok(l) = l else { break };
                    if let Ok(p) = serde_json::from_str(&l) {
                        progress(p);
                    }
                }
            });
        }
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
        child.wait()
    })
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
    let child = spawn(store, &args, false)?;
    wait(child, |_| {}, |_| {})?.into_result()
}
