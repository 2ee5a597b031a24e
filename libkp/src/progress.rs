//! The machine-readable progress stream (`karapace --progress-fd N`,
//! docs/cli.md "Progress"): one JSON line per step forward, on a descriptor
//! the caller passed, from the places that draw progress bars on a terminal
//! and the long verbs' phases. Off unless a program turns it on; a failed
//! write is ignored (the operation matters, not its report).
//!
//! An operation declares its phases in order ([`plan`]), enters them
//! ([`phase`]) and reports units done within the current one ([`report`]).
//! The first plan wins: an operation called by another reports as a part of
//! the outer one's phase, and its own phase names (not in that plan) mute its
//! counts, so what the stream says never goes backwards across phases.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The descriptor number `karapace` is given the stream on by [`attach`].
pub const CHILD_FD: i32 = 3;

struct Stream {
    out: std::fs::File,
    steps: Vec<&'static str>,
    /// Index of the current phase in `steps`, once one began.
    step: Option<usize>,
    /// Whether the latest [`phase`] call named a phase of the plan: counts
    /// of an unplanned phase are not reported.
    counting: bool,
    /// (step, bucket) of the last line written: a line is written when it
    /// changes (per mille of a known total, else each doubling).
    last: Option<(usize, u64)>,
}

static STREAM: Mutex<Option<Stream>> = Mutex::new(None);
static ON: AtomicBool = AtomicBool::new(false);

/// Writes the stream to descriptor `fd`, which this process inherited
/// (`--progress-fd`); it becomes close-on-exec, so nothing this process
/// starts (a sandboxed command) inherits it.
pub fn take_fd(fd: i32) -> std::io::Result<()> {
    let owned = crate::sys::take_inherited_fd(fd)?;
    set_output(owned);
    Ok(())
}

/// Writes the stream to `fd`.
pub fn set_output(fd: OwnedFd) {
    *STREAM.lock().unwrap_or_else(|e| e.into_inner()) = Some(Stream::new(std::fs::File::from(fd)));
    ON.store(true, Ordering::Release);
}

/// Whether a stream is being written (a cheap check before counting).
pub fn enabled() -> bool {
    ON.load(Ordering::Acquire)
}

fn with(f: impl FnOnce(&mut Stream)) {
    if !enabled() {
        return;
    }
    if let Some(s) = STREAM.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        f(s);
    }
}

/// Declares the operation's phases, in order. Ignored when a plan exists
/// (the outer operation's).
pub fn plan(steps: &[&'static str]) {
    with(|s| s.plan(steps))
}

/// Enters phase `name` and reports it begun (0 done). A name the plan does
/// not hold, or one before the current phase, changes nothing but mutes
/// [`report`] until the next planned phase.
pub fn phase(name: &'static str) {
    with(|s| s.phase(name))
}

/// Reports `done` of `total` units (None: not known) of the current phase.
/// A line is written when the per mille changes (for an unknown total,
/// each time `done` doubles), so a caller may report every unit.
pub fn report(done: u64, total: Option<u64>) {
    with(|s| s.report(done, total))
}

impl Stream {
    fn new(out: std::fs::File) -> Stream {
        Stream {
            out,
            steps: Vec::new(),
            step: None,
            counting: false,
            last: None,
        }
    }

    fn plan(&mut self, steps: &[&'static str]) {
        if self.steps.is_empty() {
            self.steps = steps.to_vec();
        }
    }

    fn phase(&mut self, name: &'static str) {
        let Some(i) = self.steps.iter().position(|n| *n == name) else {
            self.counting = false;
            return;
        };
        if self.step.is_some_and(|cur| i < cur) {
            self.counting = false;
            return;
        }
        self.counting = true;
        if self.step != Some(i) {
            self.step = Some(i);
            self.last = None;
            self.emit(0, None);
        }
    }

    fn report(&mut self, done: u64, total: Option<u64>) {
        if self.counting {
            self.emit(done, total);
        }
    }

    fn emit(&mut self, done: u64, total: Option<u64>) {
        let Some(step) = self.step else { return };
        let bucket = match total {
            Some(t) if t > 0 => (done.min(t) as u128 * 1000 / t as u128) as u64,
            Some(_) => 1000,
            None => u64::from(u64::BITS - done.leading_zeros()),
        };
        if self.last == Some((step, bucket)) {
            return;
        }
        self.last = Some((step, bucket));
        let line = serde_json::json!({
            "phase": self.steps[step],
            "step": step + 1,
            "steps": self.steps.len(),
            "done": done,
            "total": total,
        });
        let _ = writeln!(self.out, "{line}");
    }
}

/// A reader that reports the bytes read through it, of `total`.
pub struct Reader<R> {
    inner: R,
    done: u64,
    total: Option<u64>,
}

impl<R> Reader<R> {
    pub fn new(inner: R, total: Option<u64>) -> Reader<R> {
        Reader { inner, done: 0, total }
    }
}

impl<R: std::io::Read> std::io::Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        report(self.done, self.total);
        Ok(n)
    }
}

/// Gives the child `cmd` starts a progress stream on [`CHILD_FD`] (add
/// `--progress-fd 3` to its arguments) and returns the end to read it from.
/// The write end is passed to that child alone.
pub fn attach(cmd: &mut std::process::Command) -> std::io::Result<OwnedFd> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    crate::sys::pass_fd_as(cmd, w, CHILD_FD);
    Ok(r)
}

/// One line of the stream, as [`attach`]'s reader gets it.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Line {
    pub phase: String,
    pub step: u64,
    pub steps: u64,
    pub done: u64,
    pub total: Option<u64>,
}

impl Line {
    /// How far the whole operation is, in per cent: its finished phases
    /// plus the current one's fraction (0 while its total is unknown), out
    /// of all phases. Never 100: only the operation's end is.
    pub fn percent(&self) -> u32 {
        if self.steps == 0 || self.step == 0 {
            return 0;
        }
        let frac = match self.total {
            Some(t) if t > 0 => self.done.min(t) as f64 / t as f64,
            _ => 0.0,
        };
        let p = ((self.step - 1) as f64 + frac) / self.steps as f64 * 100.0;
        (p.floor() as u32).min(99)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_counts_finished_phases_and_the_current_fraction() {
        let l = |step, steps, done, total| Line {
            phase: "p".into(),
            step,
            steps,
            done,
            total,
        };
        assert_eq!(l(1, 3, 0, None).percent(), 0);
        assert_eq!(l(2, 3, 0, None).percent(), 33);
        assert_eq!(l(2, 4, 1, Some(2)).percent(), 37);
        assert_eq!(l(1, 1, 5, Some(5)).percent(), 99);
        assert_eq!(l(3, 3, 7, Some(0)).percent(), 66);
        assert_eq!(l(0, 0, 0, None).percent(), 0);
    }

    #[test]
    fn lines_follow_the_plan_and_skip_repeats() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let mut s = Stream::new(std::fs::File::from(w));
        s.report(1, Some(2));
        s.plan(&["a", "b"]);
        s.plan(&["inner"]);
        s.phase("a");
        for i in 0..=2000 {
            s.report(i, Some(2000));
        }
        s.phase("inner");
        s.report(5, Some(10));
        s.phase("a");
        s.phase("b");
        s.phase("a");
        s.report(1, Some(1));
        s.phase("b");
        s.report(3, None);
        s.report(3, None);
        drop(s);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut text).unwrap();
        let lines: Vec<Line> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // a begun, then 1001 per-mille values (0 repeats the begin's bucket), b begun, b's 3
        assert_eq!(lines.len(), 1 + 1000 + 1 + 1, "{text}");
        assert!(lines.iter().all(|l| l.phase != "inner" && l.steps == 2));
        let p: Vec<u32> = lines.iter().map(Line::percent).collect();
        assert!(p.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
        assert_eq!(lines.last().unwrap().done, 3);
    }
}
