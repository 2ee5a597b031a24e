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
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind};
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

/// Appends `name value` to $KARAPACE_TUI_TIMING (bench/tui.sh reads it).
struct Timing(Option<std::fs::File>);

impl Timing {
    fn note(&mut self, name: &str, d: Duration) {
        if let Some(f) = &mut self.0 {
            let _ = writeln!(f, "{name} {:.3}", d.as_secs_f64() * 1000.0);
        }
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
    let mut timing = Timing(
        std::env::var_os("KARAPACE_TUI_TIMING")
            .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok()),
    );
    // SIGTERM and SIGHUP end the TUI with the terminal restored; SIGINT
    // (Ctrl-C reaches a shell inside `enter`, and us with it) does not kill
    // it while the terminal is lent.
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let int = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, int.clone())?;

    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev(info);
    }));

    setup_terminal()?;
    let result = event_loop(root, &term, &hup, &int, started, &mut timing);
    restore_terminal();
    result
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A child `karapace` run: the process, so that Ctrl-C can end it.
type Current = Arc<Mutex<Option<(std::process::Child, bool)>>>;

fn event_loop(
    root: PathBuf,
    term: &AtomicBool,
    hup: &AtomicBool,
    int: &AtomicBool,
    started: Instant,
    timing: &mut Timing,
) -> io::Result<i32> {
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut app = App::new(root.display().to_string(), no_color, now());
    let (msg_tx, msg_rx) = channel::<Msg>();
    let (req_tx, req_rx) = channel::<Req>();
    {
        let (root, tx) = (root.clone(), msg_tx.clone());
        std::thread::spawn(move || data::serve(root, req_rx, tx));
    }
    let kp = karapace_bin();
    let current: Current = Arc::new(Mutex::new(None));
    watch_hangup(current.clone());
    let mut first = true;
    let mut first_list = true;
    let mut key_at: Option<Instant> = None;
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
        while let Ok(msg) = msg_rx.try_recv() {
            let finished = matches!(msg, Msg::JobDone { .. });
            app.on_msg(msg);
            if finished {
                let _ = req_tx.send(Req::Reload);
            }
        }
        app.now = now();
        app.tick = started.elapsed().as_millis() as u64 / 100;
        terminal.draw(|f| ui::render(f, &app))?;
        if first {
            first = false;
            timing.note("first_frame_ms", started.elapsed());
        }
        if first_list && !app.rows.is_empty() {
            first_list = false;
            timing.note("first_list_frame_ms", started.elapsed());
        }
        if let Some(t) = key_at.take() {
            timing.note("key_redraw_ms", t.elapsed());
        }
        if app.quit {
            cancel(&current);
            return Ok(0);
        }
        if !event::poll(Duration::from_millis(100))? {
            continue;
        }
        let effect = match event::read()? {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                key_at = Some(Instant::now());
                app.on_key(k)
            }
            Event::Mouse(m) => {
                app.on_mouse(m);
                None
            }
            Event::Resize(..) => {
                terminal.autoresize()?;
                None
            }
            _ => None,
        };
        let Some(effect) = effect else { continue };
        match effect {
            Effect::Run(job) => spawn_job(&kp, &root, job, current.clone(), msg_tx.clone()),
            Effect::Cancel => {
                if !cancel(&current) {
                    app.error("nothing to cancel");
                }
            }
            Effect::Reload => {
                let _ = req_tx.send(Req::Reload);
            }
            Effect::StoreUsage => {
                app.usage = None;
                let _ = req_tx.send(Req::Usage);
            }
            Effect::Detail(id) => {
                let (root, kp, tx) = (root.clone(), kp.clone(), msg_tx.clone());
                std::thread::spawn(move || {
                    let lines = data::detail(&root, &kp, &id);
                    let _ = tx.send(Msg::Detail { env_id: id, lines });
                });
            }
            Effect::Diff { env, snapshot } => {
                let _ = req_tx.send(Req::Diff { env, snapshot });
            }
            Effect::Enter(id) => {
                let args = ["enter".to_string(), id];
                let msg = lend_terminal(&mut terminal, &kp, &root, &args, false)?;
                int.store(false, Ordering::Relaxed);
                app.on_msg(msg);
                let _ = req_tx.send(Req::Reload);
            }
            Effect::Exec(id, cmd) => {
                let args = ["exec".to_string(), id, "--".into(), "/bin/sh".into(), "-c".into(), cmd];
                let msg = lend_terminal(&mut terminal, &kp, &root, &args, true)?;
                int.store(false, Ordering::Relaxed);
                app.on_msg(msg);
                let _ = req_tx.send(Req::Reload);
            }
        }
    }
}

/// Sends SIGTERM to the running child, if any; whether there was one.
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

fn cancel(current: &Current) -> bool {
    let mut cur = current.lock().unwrap_or_else(|e| e.into_inner());
    let Some((child, cancelled)) = cur.as_mut() else {
        return false;
    };
    // The child is reaped only under this lock, so its pid is still its own.
    if let Ok(None) = child.try_wait() {
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        *cancelled = true;
    }
    true
}

fn spawn_job(kp: &Path, root: &Path, job: Job, current: Current, out: Sender<Msg>) {
    let mut cmd = Command::new(kp);
    cmd.arg("--store").arg(root).arg("--json").args(&job.args);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = out.send(Msg::Error(format!("{}: cannot run {}: {e}", job.label, kp.display())));
            return;
        }
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
    let stdout = read(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let stderr = read(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    *current.lock().unwrap_or_else(|e| e.into_inner()) = Some((child, false));
    std::thread::spawn(move || {
        let (status, cancelled) = loop {
            {
                let mut cur = current.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((child, cancelled)) = cur.as_mut() {
                    match child.try_wait() {
                        Ok(Some(st)) => {
                            let c = *cancelled;
                            *cur = None;
                            break (Ok(st), c);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            *cur = None;
                            break (Err(e), false);
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        let msg = match status {
            Err(e) => Msg::Error(format!("{}: {e}", job.label)),
            Ok(st) => {
                use std::os::unix::process::ExitStatusExt;
                let code = match (st.code(), cancelled) {
                    (_, true) => -1,
                    (Some(c), _) => c,
                    (None, _) => 128 + st.signal().unwrap_or(0),
                };
                Msg::JobDone {
                    job,
                    code,
                    stdout,
                    stderr,
                }
            }
        };
        let _ = out.send(msg);
    });
}

/// Gives the terminal to `karapace ARGS` (enter, exec) and takes it back:
/// the alternate screen is left and raw mode ended while it runs.
fn lend_terminal(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    kp: &Path,
    root: &Path,
    args: &[String],
    pause: bool,
) -> io::Result<Msg> {
    restore_terminal();
    let what = format!("{} {}", args[0], &args[1][..12.min(args[1].len())]);
    let status = Command::new(kp).arg("--store").arg(root).args(args).status();
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
    setup_terminal()?;
    terminal.clear()?;
    Ok(msg)
}
