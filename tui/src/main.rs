//! `karapace-tui`: a terminal UI over a Karapace store (docs/tui.md).
//!
//! Reads go through libkp on a data thread (data.rs); everything that changes
//! the store or runs inside an environment is the `karapace` command run as a
//! child with `--json`, judged by its exit status (docs/cli.md). The state and
//! its keys are app.rs, the drawing ui.rs; this file is the terminal and the
//! processes.

mod app;
mod data;
mod ui;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind, MouseEventKind};
use crossterm::execute;
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use app::{App, Effect, Job, Msg};
use data::Req;

const HELP: &str = "\
usage: karapace-tui [--store PATH]

A terminal UI for the environments in a Karapace store: list, details,
snapshots, store usage; enter, exec, build, rename, freeze, destroy and the
rest through the `karapace` command beside this one (or $KARAPACE_BIN).
Press ? inside for the keys; docs/tui.md describes it.

Exit status: 0 after q; 1 the terminal could not be set up; 64 usage;
143 ended by SIGTERM (129 SIGHUP). NO_COLOR turns colors off.
";

fn main() {
    std::process::exit(match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("karapace-tui: {e}");
            1
        }
    });
}

struct Args {
    store: Option<PathBuf>,
}

fn parse_args() -> Result<Args, i32> {
    let mut store = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--store") => match args.next() {
                Some(p) => store = Some(PathBuf::from(p)),
                None => {
                    eprintln!("karapace-tui: --store needs a PATH");
                    return Err(64);
                }
            },
            Some("-h") | Some("--help") => {
                print!("{HELP}");
                return Err(0);
            }
            Some("--version") => {
                println!("karapace-tui {}", env!("CARGO_PKG_VERSION"));
                return Err(0);
            }
            _ => {
                eprintln!("karapace-tui: unexpected argument {:?} (see --help)", a);
                return Err(64);
            }
        }
    }
    Ok(Args { store })
}

/// The `karapace` command: $KARAPACE_BIN, else the one beside this binary.
fn karapace_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KARAPACE_BIN") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("karapace")))
        .unwrap_or_else(|| PathBuf::from("karapace"))
}

fn setup_terminal() -> io::Result<()> {
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Appends `name value` to $KARAPACE_TUI_TIMING (bench/tui.sh reads it):
/// milliseconds since `main` started and, when $KARAPACE_TUI_T0 holds the
/// nanoseconds since the epoch at which the program was started (the
/// bench's `date +%s%N` before `exec`), since then too (`NAME_exec`).
struct Timing {
    file: Option<std::fs::File>,
    t0_ns: Option<u128>,
}

impl Timing {
    fn from_env() -> Timing {
        Timing {
            file: std::env::var_os("KARAPACE_TUI_TIMING")
                .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok()),
            t0_ns: std::env::var("KARAPACE_TUI_T0")
                .ok()
                .and_then(|v| v.trim().parse().ok()),
        }
    }

    fn note(&mut self, name: &str, d: Duration) {
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{name} {:.3}", d.as_secs_f64() * 1000.0);
        }
    }

    /// `name` since main started and since the program was started.
    fn note_start(&mut self, name: &str, started: Instant) {
        self.note(name, started.elapsed());
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        if let Some(t0) = self.t0_ns {
            let since = Duration::from_nanos(now_ns.saturating_sub(t0).min(u64::MAX as u128) as u64);
            self.note(&format!("{name}_exec"), since);
        }
    }
}

/// What wakes the UI loop: a worker's message or the terminal's input.
pub enum Ev {
    Msg(Msg),
    /// A terminal event, and when the input thread read it.
    Term(Event, Instant),
    /// The terminal cannot be read.
    TermErr(io::Error),
}

/// The sending end the workers (data thread, actions, details) get.
#[derive(Clone)]
pub struct Tx(Sender<Ev>);

/// The UI has gone away.
#[derive(Debug)]
pub struct Gone;

impl Tx {
    pub fn send(&self, m: Msg) -> Result<(), Gone> {
        self.0.send(Ev::Msg(m)).map_err(|_| Gone)
    }
}

fn run() -> io::Result<i32> {
    let started = Instant::now();
    let args = match parse_args() {
        Ok(a) => a,
        Err(code) => return Ok(code),
    };
    let root = match libkp::store::locate(args.store.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            // No store location at all: still open, and say why.
            eprintln!("karapace-tui: {e}");
            return Ok(3);
        }
    };
    let mut timing = Timing::from_env();
    // SIGTERM and SIGHUP end the TUI with the terminal restored; SIGINT
    // (Ctrl-C reaches a shell inside `enter`, and us with it) does not kill
    // it while the terminal is lent.
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let int = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, int.clone())?;

    // The store is read while the terminal is set up: the list's frame
    // waits for nothing else.
    let (tx, rx) = channel::<Ev>();
    let (req_tx, req_rx) = channel::<Req>();
    {
        let (root, tx) = (root.clone(), Tx(tx.clone()));
        std::thread::spawn(move || data::serve(root, req_rx, tx));
    }

    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev(info);
    }));

    setup_terminal()?;
    let gate = Arc::new(Gate::default());
    {
        let (gate, tx) = (gate.clone(), tx.clone());
        std::thread::spawn(move || read_input(&gate, &tx));
    }
    let loop_ = Loop {
        root,
        tx: Tx(tx),
        rx,
        req_tx,
        gate,
        started,
    };
    let result = loop_.run(&term, &hup, &int, &mut timing);
    restore_terminal();
    result
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The action running now: its current child (none between two steps) and
/// whether it was cancelled; None while no action runs.
type Current = Arc<Mutex<Option<Slot>>>;

struct Slot {
    child: Option<std::process::Child>,
    cancelled: bool,
}

/// Whether the input thread may read the terminal. While it is lent to a
/// child (enter, exec), not one byte of the child's input may be taken.
#[derive(Default)]
struct Gate {
    /// (pause wanted, the input thread is parked or gone)
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Gate {
    /// Returns once the input thread no longer reads.
    fn pause(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = true;
        self.cv.notify_all();
        while !g.1 {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn resume(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = false;
        self.cv.notify_all();
    }

    /// In the input thread: parks while a pause is wanted.
    fn wait_open(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 {
            g.1 = true;
            self.cv.notify_all();
            while g.0 {
                g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            g.1 = false;
        }
    }

    /// The input thread has ended: nothing to wait for.
    fn gone(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }
}

/// The input thread: reads the terminal and wakes the UI with each event,
/// so that the UI waits on one channel for keys and for the store alike.
fn read_input(gate: &Gate, tx: &Sender<Ev>) {
    loop {
        gate.wait_open();
        // Polled, not read outright: a pause waits at most this long.
        let ready = match event::poll(Duration::from_millis(100)) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Ev::TermErr(e));
                break;
            }
        };
        if !ready {
            continue;
        }
        match event::read() {
            Ok(ev) => {
                if tx.send(Ev::Term(ev, Instant::now())).is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = tx.send(Ev::TermErr(e));
                break;
            }
        }
    }
    gate.gone();
}

struct Loop {
    root: PathBuf,
    tx: Tx,
    rx: Receiver<Ev>,
    req_tx: Sender<Req>,
    gate: Arc<Gate>,
    started: Instant,
}

/// How long the loop sleeps with nothing to do: the signal flags are looked
/// at and the spinner turns this often.
const TICK: Duration = Duration::from_millis(100);

/// The most events handled between two frames.
const BATCH: usize = 256;

impl Loop {
    fn run(&self, term: &AtomicBool, hup: &AtomicBool, int: &AtomicBool, timing: &mut Timing) -> io::Result<i32> {
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        terminal.clear()?;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let mut app = App::new(self.root.display().to_string(), no_color, now());
        app.cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let kp = karapace_bin();
        let current: Current = Arc::new(Mutex::new(None));
        watch_hangup(current.clone());
        let mut first = true;
        let mut first_list = true;
        let mut key_at: Option<Instant> = None;
        let mut dirty = true;
        let mut drawn_at = Instant::now();
        loop {
            if term.load(Ordering::Relaxed) {
                cancel(&current);
                return Ok(143);
            }
            if hup.load(Ordering::Relaxed) {
                cancel(&current);
                return Ok(129);
            }
            if int.swap(false, Ordering::Relaxed) {
                cancel(&current);
                return Ok(130);
            }
            // Drawn when something happened, while an action runs (the
            // spinner) and once a second (the USED column's ages).
            let due = drawn_at.elapsed() >= Duration::from_secs(1) || app.running.is_some();
            if dirty || due {
                app.now = now();
                app.tick = self.started.elapsed().as_millis() as u64 / 100;
                terminal.draw(|f| ui::render(f, &app))?;
                drawn_at = Instant::now();
                dirty = false;
                if first {
                    first = false;
                    timing.note_start("first_frame_ms", self.started);
                }
                if first_list && !app.rows.is_empty() {
                    first_list = false;
                    timing.note_start("first_list_frame_ms", self.started);
                }
                if let Some(t) = key_at.take() {
                    timing.note("key_redraw_ms", t.elapsed());
                }
            }
            if app.quit {
                cancel(&current);
                return Ok(0);
            }
            let ev = match self.rx.recv_timeout(TICK) {
                Ok(ev) => ev,
                Err(_) => continue,
            };
            // This event and those already waiting (a bounded batch: the
            // mouse's motion can keep the queue from ever running dry), then
            // one frame.
            let waiting = std::iter::from_fn(|| self.rx.try_recv().ok()).take(BATCH);
            for ev in std::iter::once(ev).chain(waiting) {
                let effect = match ev {
                    // Mouse motion changes nothing on the screen.
                    Ev::Term(Event::Mouse(m), _)
                        if !matches!(m.kind, MouseEventKind::ScrollDown | MouseEventKind::ScrollUp) =>
                    {
                        continue
                    }
                    Ev::Msg(msg) => {
                        let finished = matches!(msg, Msg::JobDone { .. });
                        app.on_msg(msg);
                        if finished {
                            let _ = self.req_tx.send(Req::Reload);
                        }
                        None
                    }
                    Ev::TermErr(e) => return Err(e),
                    Ev::Term(Event::Key(k), at) if k.kind != KeyEventKind::Release => {
                        key_at.get_or_insert(at);
                        app.on_key(k)
                    }
                    Ev::Term(Event::Mouse(m), _) => {
                        app.on_mouse(m);
                        None
                    }
                    Ev::Term(Event::Resize(..), _) => {
                        terminal.autoresize()?;
                        None
                    }
                    Ev::Term(..) => None,
                };
                dirty = true;
                if let Some(effect) = effect {
                    self.apply(effect, &mut app, &mut terminal, &kp, &current, int)?;
                }
                if app.quit {
                    break;
                }
            }
        }
    }

    fn apply(
        &self,
        effect: Effect,
        app: &mut App,
        terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
        kp: &Path,
        current: &Current,
        int: &AtomicBool,
    ) -> io::Result<()> {
        let root = &self.root;
        match effect {
            Effect::Run(job) => spawn_job(kp, root, job, current.clone(), self.tx.clone()),
            Effect::Cancel => {
                if !cancel(current) {
                    app.error("nothing to cancel");
                }
            }
            Effect::Reload => {
                let _ = self.req_tx.send(Req::Reload);
            }
            Effect::StoreUsage => {
                app.usage = None;
                let _ = self.req_tx.send(Req::Usage);
            }
            Effect::Detail(id) => {
                let (root, kp, tx) = (root.clone(), kp.to_path_buf(), self.tx.clone());
                std::thread::spawn(move || {
                    let lines = data::detail(&root, &kp, &id);
                    let _ = tx.send(Msg::Detail { env_id: id, lines });
                });
            }
            Effect::Diff { env, snapshot } => {
                let _ = self.req_tx.send(Req::Diff { env, snapshot });
            }
            Effect::Enter(id) => {
                let args = ["enter".to_string(), id];
                let msg = self.lend_terminal(terminal, kp, &args, false)?;
                int.store(false, Ordering::Relaxed);
                app.on_msg(msg);
                let _ = self.req_tx.send(Req::Reload);
            }
            Effect::Exec(id, cmd) => {
                let args = ["exec".to_string(), id, "--".into(), "/bin/sh".into(), "-c".into(), cmd];
                let msg = self.lend_terminal(terminal, kp, &args, true)?;
                int.store(false, Ordering::Relaxed);
                app.on_msg(msg);
                let _ = self.req_tx.send(Req::Reload);
            }
        }
        Ok(())
    }

    /// Gives the terminal to `karapace ARGS` (enter, exec) and takes it
    /// back: the input thread stops reading, the alternate screen is left
    /// and raw mode ended while it runs.
    fn lend_terminal(
        &self,
        terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
        kp: &Path,
        args: &[String],
        pause: bool,
    ) -> io::Result<Msg> {
        self.gate.pause();
        restore_terminal();
        let what = format!("{} {}", args[0], &args[1][..12.min(args[1].len())]);
        let status = Command::new(kp).arg("--store").arg(&self.root).args(args).status();
        let msg = match status {
            Ok(st) => {
                use std::os::unix::process::ExitStatusExt;
                let code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
                if pause {
                    print!("\n[{what}: exit status {code}; press Enter to return]");
                    let _ = io::stdout().flush();
                    let mut line = String::new();
                    let _ = io::stdin().read_line(&mut line);
                }
                Msg::Returned { what, code }
            }
            Err(e) => Msg::Error(format!("{what}: cannot run {}: {e}", kp.display())),
        };
        let back = setup_terminal().and_then(|()| terminal.clear());
        self.gate.resume();
        back?;
        Ok(msg)
    }
}

/// A terminal hung up without a SIGHUP reaching us (its emulator or tmux
/// server killed) reads as end of file forever, and crossterm's reader then
/// spins inside `event::poll` without returning. A watcher thread asks the
/// terminal every quarter second (a hung-up one answers every ioctl with EIO)
/// and ends the program as SIGHUP would: there is no terminal left to restore.
fn watch_hangup(current: Current) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(250));
        if rustix::termios::tcgetattr(io::stdout()).is_err() {
            cancel(&current);
            std::process::exit(129);
        }
    });
}

/// Cancels the running action, if any (SIGTERM to its child; no further
/// step starts); whether there was one.
fn cancel(current: &Current) -> bool {
    let mut cur = current.lock().unwrap_or_else(|e| e.into_inner());
    let Some(slot) = cur.as_mut() else {
        return false;
    };
    match slot.child.as_mut() {
        // The child is reaped only under this lock, so its pid is still its own.
        Some(child) => {
            if let Ok(None) = child.try_wait() {
                if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                }
                slot.cancelled = true;
            }
        }
        // Between two steps: the next one does not start.
        None => slot.cancelled = true,
    }
    true
}

/// Runs the job's steps in turn on a thread of their own, each as
/// `karapace --store ROOT --json ARGS`, until one fails or is cancelled.
fn spawn_job(kp: &Path, root: &Path, job: Job, current: Current, out: Tx) {
    *current.lock().unwrap_or_else(|e| e.into_inner()) = Some(Slot {
        child: None,
        cancelled: false,
    });
    let (kp, root) = (kp.to_path_buf(), root.to_path_buf());
    std::thread::spawn(move || {
        let msg = run_steps(&kp, &root, job, &current);
        *current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let _ = out.send(msg);
    });
}

fn run_steps(kp: &Path, root: &Path, job: Job, current: &Current) -> Msg {
    let steps: Vec<Vec<String>> = std::iter::once(job.args.clone())
        .chain(job.then.iter().cloned())
        .collect();
    let (mut code, mut stdout, mut stderr) = (0, String::new(), String::new());
    for args in steps {
        let mut cmd = Command::new(kp);
        cmd.arg("--store").arg(root).arg("--json").args(&args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let (out, err) = {
            let mut cur = current.lock().unwrap_or_else(|e| e.into_inner());
            let Some(slot) = cur.as_mut() else { break };
            if slot.cancelled {
                code = -1;
                break;
            }
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => return Msg::Error(format!("{}: cannot run {}: {e}", job.label, kp.display())),
            };
            let read = |r: Option<Box<dyn Read + Send>>| {
                std::thread::spawn(move || {
                    let mut s = String::new();
                    if let Some(mut r) = r {
                        let _ = r.read_to_string(&mut s);
                    }
                    s
                })
            };
            let out = read(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
            let err = read(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
            slot.child = Some(child);
            (out, err)
        };
        let (status, cancelled) = loop {
            {
                let mut cur = current.lock().unwrap_or_else(|e| e.into_inner());
                let Some(slot) = cur.as_mut() else {
                    return Msg::Error(format!("{}: lost track of its process", job.label));
                };
                let Some(child) = slot.child.as_mut() else {
                    return Msg::Error(format!("{}: lost track of its process", job.label));
                };
                match child.try_wait() {
                    Ok(Some(st)) => {
                        slot.child = None;
                        break (Ok(st), slot.cancelled);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        slot.child = None;
                        break (Err(e), false);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        stdout = out.join().unwrap_or_default();
        stderr = err.join().unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        code = match status {
            Err(e) => return Msg::Error(format!("{}: {e}", job.label)),
            Ok(_) if cancelled => -1,
            Ok(st) => st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)),
        };
        if code != 0 {
            break;
        }
    }
    Msg::JobDone {
        job,
        code,
        stdout,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::Feeds;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for `karapace` that logs its verb and fails the verb
    /// `fail` (exit 3, a line on stderr); a fresh directory per test.
    fn fake_kp(name: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("kp-tui-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let kp = dir.join("karapace");
        let log = dir.join("log");
        std::fs::write(
            &kp,
            format!(
                "#!/bin/sh\necho \"$4 $5\" >>'{}'\nif [ \"$4\" = fail ]; then echo 'karapace: error: it failed' >&2; exit 3; fi\necho '{{\"step\":\"'$4'\"}}'\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&kp, std::fs::Permissions::from_mode(0o755)).unwrap();
        (kp, log)
    }

    fn job(steps: &[&[&str]]) -> Job {
        let v: Vec<Vec<String>> = steps
            .iter()
            .map(|s| s.iter().map(|a| a.to_string()).collect())
            .collect();
        Job {
            label: "two steps".into(),
            args: v[0].clone(),
            feeds: Feeds::Nothing,
            then: v[1..].to_vec(),
        }
    }

    fn slot(cancelled: bool) -> Current {
        Arc::new(Mutex::new(Some(Slot { child: None, cancelled })))
    }

    #[test]
    fn steps_run_in_turn_and_the_last_one_s_output_is_the_job_s() {
        let (kp, log) = fake_kp("turn");
        let msg = run_steps(
            &kp,
            Path::new("/st"),
            job(&[&["new", "web"], &["build", "web"]]),
            &slot(false),
        );
        let Msg::JobDone { code, stdout, .. } = msg else {
            panic!("{msg:?}")
        };
        assert_eq!((code, stdout.trim()), (0, "{\"step\":\"build\"}"));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "new web\nbuild web\n");
        let _ = std::fs::remove_dir_all(kp.parent().unwrap());
    }

    #[test]
    fn a_failed_step_stops_the_rest_and_names_why() {
        let (kp, log) = fake_kp("fail");
        let msg = run_steps(
            &kp,
            Path::new("/st"),
            job(&[&["fail", "x"], &["build", "x"]]),
            &slot(false),
        );
        let Msg::JobDone { code, stderr, .. } = msg else {
            panic!("{msg:?}")
        };
        assert_eq!((code, stderr.trim()), (3, "karapace: error: it failed"));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "fail x\n");
        let _ = std::fs::remove_dir_all(kp.parent().unwrap());
    }

    #[test]
    fn a_job_cancelled_between_steps_starts_no_more() {
        let (kp, log) = fake_kp("cancel");
        let cur = slot(false);
        assert!(cancel(&cur), "an action runs: there is something to cancel");
        let msg = run_steps(&kp, Path::new("/st"), job(&[&["new", "y"], &["build", "y"]]), &cur);
        let Msg::JobDone { code, .. } = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(code, -1);
        assert!(!log.exists(), "a step ran");
        let _ = std::fs::remove_dir_all(kp.parent().unwrap());
    }
}
