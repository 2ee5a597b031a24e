//! The TUI's state and how it changes: keys, mouse and messages in, effects
//! out. Nothing here touches the terminal, the store or a process, so every
//! behaviour is a unit test (docs/tui.md lists the keys).

use std::cell::Cell;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use libkp::env::{EnvRecord, State};

/// One environment as the list shows it.
#[derive(Clone, Debug)]
pub struct Row {
    pub rec: EnvRecord,
    pub state: State,
    /// Bytes of its writable layer on disk, once measured.
    pub size: Option<u64>,
}

impl Row {
    pub fn new(rec: EnvRecord, state: State) -> Row {
        Row { rec, state, size: None }
    }

    pub fn name(&self) -> &str {
        self.rec.name.as_deref().unwrap_or("-")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    List,
    Detail,
    Snapshots,
    Store,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Name,
    State,
    Used,
    Size,
}

impl SortKey {
    fn next(self) -> SortKey {
        match self {
            SortKey::Name => SortKey::State,
            SortKey::State => SortKey::Used,
            SortKey::Used => SortKey::Size,
            SortKey::Size => SortKey::Name,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::State => "state",
            SortKey::Used => "last used",
            SortKey::Size => "size",
        }
    }
}

/// What a text prompt asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Rename,
    Exec,
    Build,
    /// The directory a preset's manifest goes to; the environment built
    /// from it takes the directory's name.
    Preset(&'static str),
}

impl Ask {
    pub fn title(self) -> String {
        match self {
            Ask::Rename => "New name".into(),
            Ask::Exec => "Command to run".into(),
            Ask::Build => "Manifest path".into(),
            Ask::Preset(p) => format!("Directory for the {p} manifest (names the environment)"),
        }
    }
}

/// The presets a build can start from (`karapace preset list`).
pub fn presets() -> &'static [(&'static str, &'static str)] {
    libkp::schema::templates::PRESETS
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter,
    Help,
    /// A yes/no question before a destructive action.
    Confirm {
        question: String,
        job: Job,
    },
    Prompt {
        ask: Ask,
        env: Option<String>,
        input: String,
    },
    /// Choosing a preset to build from; the index into [`presets`].
    Pick {
        selected: usize,
    },
}

/// A `karapace` invocation: run with `--json` as a child, off the UI thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// What the progress line and the status bar call it.
    pub label: String,
    /// The verb and its arguments (`--store` and `--json` are added).
    pub args: Vec<String>,
    /// Where its JSON output goes when it succeeds.
    pub feeds: Feeds,
    /// Further invocations, run in turn while each one before succeeds (a
    /// preset's `new`, then its `build`); `args` is the first.
    pub then: Vec<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feeds {
    Nothing,
    GcPreview,
    Verify,
}

/// What the runtime does for the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Run(Job),
    /// Suspend the TUI and give the terminal to `karapace enter ENV`.
    Enter(String),
    /// Suspend the TUI and run a command in ENV on the terminal.
    Exec(String, String),
    Cancel,
    Reload,
    StoreUsage,
    /// Read the selected environment's lock and drift summary.
    Detail(String),
    Diff {
        env: String,
        snapshot: String,
    },
}

/// What the runtime tells the app.
#[derive(Debug)]
pub enum Msg {
    Rows(Vec<Row>),
    /// The store could not be listed: what it was, and why.
    LoadError(String),
    Sizes(Vec<(String, u64)>),
    JobDone {
        job: Job,
        code: i32,
        stdout: String,
        stderr: String,
    },
    Usage(Result<Usage, String>),
    Detail {
        env_id: String,
        lines: Vec<String>,
    },
    Diff {
        snapshot: String,
        lines: Result<Vec<String>, String>,
    },
    /// The outcome of a suspended run (enter, exec).
    Returned {
        what: String,
        code: i32,
    },
    Error(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// (kind, objects, bytes), one per object kind.
    pub kinds: Vec<(String, u64, u64)>,
    pub envs_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// The action running now, for the progress line.
#[derive(Clone, Debug)]
pub struct Running {
    pub label: String,
    pub started_tick: u64,
}

pub struct App {
    pub store: String,
    pub rows: Vec<Row>,
    /// Indexes into `rows` that the filter lets through, in sort order.
    pub visible: Vec<usize>,
    /// Position in `visible`.
    pub selected: usize,
    /// First visible line of the list; kept by the renderer.
    pub offset: Cell<usize>,
    pub view: View,
    pub mode: Mode,
    pub filter: String,
    pub sort: SortKey,
    pub status: Option<Status>,
    pub running: Option<Running>,
    pub loaded: bool,
    pub usage: Option<Result<Usage, String>>,
    pub gc_preview: Option<serde_json::Value>,
    pub verify: Option<serde_json::Value>,
    pub snap_selected: usize,
    pub diff: Option<(String, Result<Vec<String>, String>)>,
    /// Lock and drift summary lines for the environment with this id.
    pub detail: Option<(String, Vec<String>)>,
    pub detail_scroll: usize,
    pub no_color: bool,
    pub quit: bool,
    /// Seconds since the epoch, for "last used"; set by the runtime.
    pub now: u64,
    /// Advanced by the runtime on each loop, for the spinner.
    pub tick: u64,
    /// Lines a page of the list holds, as last drawn.
    pub page: Cell<usize>,
    /// The status a finished action shows once the list has been read again
    /// (so that what it says and what the list shows agree).
    pub after_reload: Option<Status>,
    /// Where relative paths typed in a prompt lead (the children run here).
    pub cwd: String,
}

impl App {
    pub fn new(store: String, no_color: bool, now: u64) -> App {
        App {
            store,
            rows: Vec::new(),
            visible: Vec::new(),
            selected: 0,
            offset: Cell::new(0),
            view: View::List,
            mode: Mode::Normal,
            filter: String::new(),
            sort: SortKey::Name,
            status: None,
            running: None,
            loaded: false,
            usage: None,
            gc_preview: None,
            verify: None,
            snap_selected: 0,
            diff: None,
            detail: None,
            detail_scroll: 0,
            no_color,
            quit: false,
            now,
            tick: 0,
            page: Cell::new(10),
            after_reload: None,
            cwd: String::new(),
        }
    }

    pub fn current(&self) -> Option<&Row> {
        self.visible.get(self.selected).and_then(|&i| self.rows.get(i))
    }

    fn current_id(&self) -> Option<String> {
        self.current().map(|r| r.rec.env_id.clone())
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    /// Recomputes `visible` after the rows, the filter or the sort changed,
    /// keeping the same environment selected when it is still shown.
    pub fn refilter(&mut self) {
        let keep = self.current_id();
        self.refilter_keeping(keep);
    }

    fn refilter_keeping(&mut self, keep: Option<String>) {
        let f = self.filter.to_lowercase();
        let mut vis: Vec<usize> = (0..self.rows.len())
            .filter(|&i| {
                let r = &self.rows[i];
                f.is_empty()
                    || r.name().to_lowercase().contains(&f)
                    || r.rec.env_id.starts_with(&f)
                    || r.rec.image.as_deref().unwrap_or("").to_lowercase().contains(&f)
                    || r.state.as_str() == f
            })
            .collect();
        let rows = &self.rows;
        match self.sort {
            SortKey::Name => {}
            SortKey::State => vis.sort_by_key(|&i| rows[i].state.as_str()),
            SortKey::Used => vis.sort_by_key(|&i| std::cmp::Reverse(rows[i].rec.updated)),
            SortKey::Size => vis.sort_by_key(|&i| std::cmp::Reverse(rows[i].size.unwrap_or(0))),
        }
        self.visible = vis;
        self.selected = keep
            .and_then(|id| self.visible.iter().position(|&i| self.rows[i].rec.env_id == id))
            .unwrap_or(0)
            .min(self.visible.len().saturating_sub(1));
    }

    fn move_by(&mut self, delta: isize) {
        if self.view == View::Detail {
            // The details scroll; the environment stays.
            self.detail_scroll = clamp(self.detail_scroll as isize + delta, 500);
            return;
        }
        if self.view == View::Snapshots {
            let n = self.current().map(|r| r.rec.snapshots.len()).unwrap_or(0);
            self.snap_selected = clamp(self.snap_selected as isize + delta, n);
            return;
        }
        self.selected = clamp(self.selected as isize + delta, self.visible.len());
    }

    pub fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::ScrollUp => self.move_by(-3),
            _ => {}
        }
    }

    /// A key, in whatever mode the app is in.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            if self.running.is_some() {
                return Some(Effect::Cancel);
            }
            self.mode = Mode::Normal;
            return None;
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Help => {
                if key.code == KeyCode::Char('q') {
                    self.quit = true;
                }
                // Any other key closes the overlay (Esc, ?, ...).
                None
            }
            Mode::Filter => {
                match key.code {
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.refilter();
                    }
                    KeyCode::Enter => {}
                    KeyCode::Backspace => {
                        self.filter.pop();
                        self.refilter();
                        self.mode = Mode::Filter;
                    }
                    KeyCode::Char(c) => {
                        self.filter.push(c);
                        self.refilter();
                        self.mode = Mode::Filter;
                    }
                    KeyCode::Down | KeyCode::Up => {
                        self.move_by(if key.code == KeyCode::Down { 1 } else { -1 });
                        self.mode = Mode::Filter;
                    }
                    _ => self.mode = Mode::Filter,
                }
                None
            }
            Mode::Confirm { question, job } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => self.start(job),
                _ => {
                    let _ = question;
                    self.info("cancelled");
                    None
                }
            },
            Mode::Prompt { ask, env, mut input } => match key.code {
                KeyCode::Esc => None,
                KeyCode::Enter => self.submit(ask, env, input),
                KeyCode::Backspace => {
                    input.pop();
                    self.mode = Mode::Prompt { ask, env, input };
                    None
                }
                KeyCode::Char(c) => {
                    input.push(c);
                    self.mode = Mode::Prompt { ask, env, input };
                    None
                }
                _ => {
                    self.mode = Mode::Prompt { ask, env, input };
                    None
                }
            },
            Mode::Pick { selected } => {
                let n = presets().len();
                match key.code {
                    KeyCode::Char('j') | KeyCode::Down => {
                        self.mode = Mode::Pick {
                            selected: clamp(selected as isize + 1, n),
                        }
                    }
                    KeyCode::Char('k') | KeyCode::Up => {
                        self.mode = Mode::Pick {
                            selected: clamp(selected as isize - 1, n),
                        }
                    }
                    KeyCode::Enter => {
                        let (name, _) = presets()[selected.min(n - 1)];
                        self.mode = Mode::Prompt {
                            ask: Ask::Preset(name),
                            env: None,
                            input: name.to_string(),
                        };
                    }
                    _ => self.info("cancelled"),
                }
                None
            }
            Mode::Normal => self.normal_key(key, ctrl),
        }
    }

    fn normal_key(&mut self, key: KeyEvent, ctrl: bool) -> Option<Effect> {
        // Alt-x is not x (a terminal sends Esc x for it).
        if key.modifiers.contains(KeyModifiers::ALT) {
            return None;
        }
        let page = self.page.get().max(1) as isize;
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Esc | KeyCode::Char('h') | KeyCode::Left => {
                if self.view != View::List {
                    self.view = View::List;
                } else if key.code == KeyCode::Esc && !self.filter.is_empty() {
                    self.filter.clear();
                    self.refilter();
                }
                self.status = None;
            }
            KeyCode::Char('j') | KeyCode::Down => self.move_by(1),
            KeyCode::Char('k') | KeyCode::Up => self.move_by(-1),
            KeyCode::Char('d') if ctrl => self.move_by(page / 2),
            KeyCode::Char('u') if ctrl => self.move_by(-page / 2),
            KeyCode::PageDown => self.move_by(page),
            KeyCode::PageUp => self.move_by(-page),
            KeyCode::Char('g') | KeyCode::Home if self.view != View::Store => self.move_by(isize::MIN / 2),
            KeyCode::Char('G') | KeyCode::End => self.move_by(isize::MAX / 2),
            KeyCode::Char('r') if ctrl => return Some(Effect::Reload),
            KeyCode::F(5) => return Some(Effect::Reload),
            KeyCode::Char('/') => {
                self.view = View::List;
                self.mode = Mode::Filter;
            }
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.refilter();
                self.info(format!("sorted by {}", self.sort.as_str()));
            }
            KeyCode::Char('U') => {
                self.view = View::Store;
                return Some(Effect::StoreUsage);
            }
            KeyCode::Char('b') => {
                self.mode = Mode::Prompt {
                    ask: Ask::Build,
                    env: None,
                    input: String::new(),
                };
            }
            KeyCode::Char('p') => self.mode = Mode::Pick { selected: 0 },
            _ if self.view == View::Store => return self.store_key(key),
            _ => return self.env_key(key),
        }
        None
    }

    fn store_key(&mut self, key: KeyEvent) -> Option<Effect> {
        match key.code {
            KeyCode::Char('g') => self.start(Job {
                label: "gc preview".into(),
                args: vec!["gc".into(), "--dry-run".into()],
                feeds: Feeds::GcPreview,
                then: Vec::new(),
            }),
            KeyCode::Char('X') => {
                self.confirm(
                    "Remove everything no environment, snapshot, image or ref reaches?".into(),
                    Job {
                        label: "gc".into(),
                        args: vec!["gc".into()],
                        feeds: Feeds::Nothing,
                        then: Vec::new(),
                    },
                );
                None
            }
            KeyCode::Char('v') => self.start(Job {
                label: "verify-store".into(),
                args: vec!["verify-store".into()],
                feeds: Feeds::Verify,
                then: Vec::new(),
            }),
            _ => None,
        }
    }

    fn env_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let row = self.current()?.clone();
        let id = row.rec.env_id.clone();
        let who = row.rec.display_name();
        let job = |verb: &str, label: String| Job {
            label,
            args: vec![verb.into(), id.clone()],
            feeds: Feeds::Nothing,
            then: Vec::new(),
        };
        match key.code {
            KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right if self.view == View::List => {
                // Read afresh each time: the drift changes with every exec.
                self.view = View::Detail;
                self.detail_scroll = 0;
                return Some(Effect::Detail(id));
            }
            KeyCode::Enter if self.view == View::Snapshots => {
                let s = row.rec.snapshots.get(self.snap_selected)?;
                return Some(Effect::Diff {
                    env: id,
                    snapshot: s.layer.clone(),
                });
            }
            KeyCode::Char('S') => {
                self.view = View::Snapshots;
                self.snap_selected = row.rec.snapshots.len().saturating_sub(1);
                self.diff = None;
            }
            KeyCode::Char('e') => return Some(Effect::Enter(id)),
            KeyCode::Char('!') | KeyCode::Char('x') => {
                self.mode = Mode::Prompt {
                    ask: Ask::Exec,
                    env: Some(id),
                    input: String::new(),
                }
            }
            KeyCode::Char('r') => {
                self.mode = Mode::Prompt {
                    ask: Ask::Rename,
                    env: Some(id),
                    input: String::new(),
                }
            }
            KeyCode::Char('c') => return self.start(job("commit", format!("commit {who}"))),
            KeyCode::Char('f') => self.confirm(
                format!("Freeze {who}? Nothing can write to it afterwards."),
                job("freeze", format!("freeze {who}")),
            ),
            KeyCode::Char('a') => self.confirm(
                format!("Archive {who}? It stays, with no entry."),
                job("archive", format!("archive {who}")),
            ),
            KeyCode::Char('D') => self.confirm(
                format!("Destroy {who}? This cannot be undone."),
                job("destroy", format!("destroy {who}")),
            ),
            KeyCode::Char('t') => self.confirm(
                format!("Stop everything running in {who}?"),
                job("stop", format!("stop {who}")),
            ),
            KeyCode::Char('B') => match &row.rec.manifest {
                Some(m) => self.confirm(
                    format!("Rebuild {who} from {m}? The old environment is destroyed."),
                    Job {
                        label: format!("rebuild {who}"),
                        args: vec!["rebuild".into(), m.clone()],
                        feeds: Feeds::Nothing,
                        then: Vec::new(),
                    },
                ),
                None => self.error(format!("{who} has no manifest to rebuild from")),
            },
            KeyCode::Char('R') if self.view == View::Snapshots => {
                let s = row.rec.snapshots.get(self.snap_selected)?;
                let short = s.layer[..12.min(s.layer.len())].to_string();
                self.confirm(
                    format!("Restore {who} to snapshot {short}? Changes since the last commit are lost."),
                    Job {
                        label: format!("restore {who}"),
                        args: vec!["restore".into(), id, s.layer.clone()],
                        feeds: Feeds::Nothing,
                        then: Vec::new(),
                    },
                )
            }
            _ => {}
        }
        None
    }

    fn confirm(&mut self, question: String, job: Job) {
        self.mode = Mode::Confirm { question, job };
    }

    fn submit(&mut self, ask: Ask, env: Option<String>, input: String) -> Option<Effect> {
        let input = input.trim().to_string();
        if input.is_empty() {
            self.info("cancelled");
            return None;
        }
        match (ask, env) {
            (Ask::Rename, Some(id)) => self.start(Job {
                label: format!("rename to {input}"),
                args: vec!["rename".into(), id, input],
                feeds: Feeds::Nothing,
                then: Vec::new(),
            }),
            (Ask::Exec, Some(id)) => Some(Effect::Exec(id, input)),
            (Ask::Preset(preset), _) => {
                // The environment takes the directory's name, checked here so
                // that a bad one writes nothing.
                let name = std::path::Path::new(&input)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .to_string();
                if let Err(e) = libkp::env::check_name(&name) {
                    self.error(format!("{input}: the directory names the environment: {e}"));
                    return None;
                }
                self.start(Job {
                    label: format!("build {name} from preset {preset}"),
                    args: vec!["new".into(), input.clone(), "--preset".into(), preset.into()],
                    feeds: Feeds::Nothing,
                    then: vec![vec!["build".into(), input, "--name".into(), name]],
                })
            }
            (Ask::Build, _) => self.start(Job {
                label: format!("build {input}"),
                args: vec!["build".into(), input],
                feeds: Feeds::Nothing,
                then: Vec::new(),
            }),
            _ => None,
        }
    }

    /// Starts a job unless one runs already (one at a time: they take the
    /// store's locks anyway).
    fn start(&mut self, job: Job) -> Option<Effect> {
        if let Some(r) = &self.running {
            self.error(format!("{} is still running (Ctrl-C cancels it)", r.label));
            return None;
        }
        self.running = Some(Running {
            label: job.label.clone(),
            started_tick: self.tick,
        });
        Some(Effect::Run(job))
    }

    pub fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Rows(rows) => {
                let sizes: std::collections::HashMap<String, u64> = self
                    .rows
                    .iter()
                    .filter_map(|r| Some((r.rec.env_id.clone(), r.size?)))
                    .collect();
                let keep = self.current_id();
                self.rows = rows;
                for r in &mut self.rows {
                    if r.size.is_none() {
                        r.size = sizes.get(&r.rec.env_id).copied();
                    }
                }
                self.loaded = true;
                if self.status.as_ref().is_some_and(|s| s.text.starts_with("store: ")) {
                    self.status = None;
                }
                if let Some(s) = self.after_reload.take() {
                    self.status = Some(s);
                }
                self.refilter_keeping(keep);
            }
            Msg::LoadError(e) => {
                self.loaded = true;
                self.after_reload = None;
                self.error(format!("store: {e}"));
            }
            Msg::Sizes(sizes) => {
                let map: std::collections::HashMap<_, _> = sizes.into_iter().collect();
                for r in &mut self.rows {
                    if let Some(&s) = map.get(&r.rec.env_id) {
                        r.size = Some(s);
                    }
                }
                if self.sort == SortKey::Size {
                    self.refilter();
                }
            }
            Msg::JobDone {
                job,
                code,
                stdout,
                stderr,
            } => {
                self.running = None;
                if code == 0 {
                    let v: Option<serde_json::Value> = serde_json::from_str(stdout.trim()).ok();
                    match job.feeds {
                        Feeds::GcPreview => self.gc_preview = v,
                        Feeds::Verify => self.verify = v,
                        Feeds::Nothing => {}
                    }
                    self.after_reload = Some(Status {
                        text: format!("{}: done", job.label),
                        error: false,
                    });
                } else {
                    let why = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
                    let what = if code == -1 {
                        "cancelled".to_string()
                    } else {
                        format!("failed (exit {code})")
                    };
                    self.error(format!(
                        "{} {what}{}{why}",
                        job.label,
                        if why.is_empty() { "" } else { ": " }
                    ));
                    if job.feeds == Feeds::Verify {
                        self.verify = serde_json::from_str(stdout.trim()).ok();
                    }
                }
            }
            Msg::Usage(u) => self.usage = Some(u),
            Msg::Detail { env_id, lines } => self.detail = Some((env_id, lines)),
            Msg::Diff { snapshot, lines } => self.diff = Some((snapshot, lines)),
            Msg::Returned { what, code } => {
                if code == 0 {
                    self.info(format!("{what}: exited 0"));
                } else {
                    self.error(format!("{what}: exit status {code}"));
                }
            }
            Msg::Error(e) => {
                self.running = None;
                self.error(e);
            }
        }
    }
}

fn clamp(v: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    v.clamp(0, len as isize - 1) as usize
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A distinct env_id whose short id begins with `i` in hex.
    pub fn id(i: usize) -> String {
        format!("{i:04x}{}", "e".repeat(60))
    }

    pub fn rec(i: usize, name: Option<&str>) -> EnvRecord {
        let mut r = EnvRecord::new(id(i), name.map(String::from));
        r.image = Some("debian:12".into());
        r.created = 1_700_000_000;
        r.updated = 1_700_000_000 + i as u64;
        r
    }

    pub fn app_with(n: usize) -> App {
        let mut app = App::new("/store".into(), true, 1_700_000_000 + 3600);
        let rows = (0..n)
            .map(|i| Row::new(rec(i, Some(&format!("env{i:04}"))), State::Built))
            .collect();
        app.on_msg(Msg::Rows(rows));
        app
    }

    pub fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn ch(c: char) -> KeyEvent {
        key(KeyCode::Char(c))
    }

    #[test]
    fn vim_keys_and_arrows_move_and_stop_at_the_ends() {
        let mut app = app_with(5);
        app.on_key(ch('j'));
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.selected, 2);
        app.on_key(ch('k'));
        assert_eq!(app.selected, 1);
        app.on_key(ch('G'));
        assert_eq!(app.selected, 4);
        app.on_key(ch('j'));
        assert_eq!(app.selected, 4);
        app.on_key(ch('g'));
        assert_eq!(app.selected, 0);
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.selected, 0);
    }

    #[test]
    fn mouse_wheel_scrolls() {
        let mut app = app_with(10);
        let m = |kind| MouseEvent {
            kind,
            column: 0,
            row: 0,
            modifiers: KeyModifiers::NONE,
        };
        app.on_mouse(m(MouseEventKind::ScrollDown));
        assert_eq!(app.selected, 3);
        app.on_mouse(m(MouseEventKind::ScrollUp));
        assert_eq!(app.selected, 0);
    }

    #[test]
    fn help_opens_with_question_mark_closes_with_esc_and_q_quits() {
        let mut app = app_with(1);
        app.on_key(ch('?'));
        assert_eq!(app.mode, Mode::Help);
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.mode, Mode::Normal);
        assert!(!app.quit);
        app.on_key(ch('q'));
        assert!(app.quit);
    }

    #[test]
    fn filter_narrows_and_esc_clears() {
        let mut app = app_with(20);
        app.on_key(ch('/'));
        for c in "env001".chars() {
            app.on_key(ch(c));
        }
        assert_eq!(app.visible.len(), 10);
        app.on_key(ch('5'));
        assert_eq!(app.visible.len(), 1);
        assert_eq!(app.current().unwrap().name(), "env0015");
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.visible.len(), 1);
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.visible.len(), 20);
        // The selection stays on the same environment.
        assert_eq!(app.current().unwrap().name(), "env0015");
    }

    #[test]
    fn sort_cycles_and_orders() {
        let mut app = app_with(3);
        app.on_key(ch('s'));
        assert_eq!(app.sort, SortKey::State);
        app.on_key(ch('s'));
        assert_eq!(app.sort, SortKey::Used);
        // Most recently used first.
        assert_eq!(app.rows[app.visible[0]].name(), "env0002");
        app.on_msg(Msg::Sizes(vec![(id(1), 500)]));
        app.on_key(ch('s'));
        assert_eq!(app.sort, SortKey::Size);
        assert_eq!(app.rows[app.visible[0]].name(), "env0001");
        app.on_key(ch('s'));
        assert_eq!(app.sort, SortKey::Name);
        assert_eq!(app.rows[app.visible[0]].name(), "env0000");
    }

    #[test]
    fn destroy_asks_first_and_only_y_runs_it() {
        let mut app = app_with(2);
        app.on_key(ch('j'));
        assert_eq!(app.on_key(ch('D')), None);
        assert!(matches!(app.mode, Mode::Confirm { .. }));
        assert_eq!(app.on_key(ch('n')), None);
        assert_eq!(app.mode, Mode::Normal);
        app.on_key(ch('D'));
        let Some(Effect::Run(job)) = app.on_key(ch('y')) else {
            panic!("no job")
        };
        assert_eq!(job.args, vec!["destroy".to_string(), id(1)]);
        assert!(app.running.is_some());
    }

    #[test]
    fn rename_prompts_for_the_name() {
        let mut app = app_with(1);
        app.on_key(ch('r'));
        for c in "web".chars() {
            app.on_key(ch(c));
        }
        let Some(Effect::Run(job)) = app.on_key(key(KeyCode::Enter)) else {
            panic!("no job")
        };
        assert_eq!(job.args, vec!["rename".to_string(), id(0), "web".into()]);
    }

    #[test]
    fn one_job_at_a_time_and_ctrl_c_cancels_it() {
        let mut app = app_with(1);
        assert!(matches!(app.on_key(ch('c')), Some(Effect::Run(_))));
        assert_eq!(app.on_key(ch('c')), None);
        assert!(app.status.as_ref().unwrap().error);
        let cc = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.on_key(cc), Some(Effect::Cancel));
    }

    #[test]
    fn a_failed_job_names_why_in_the_status_bar() {
        let mut app = app_with(1);
        let Some(Effect::Run(job)) = app.on_key(ch('c')) else {
            panic!()
        };
        app.on_msg(Msg::JobDone {
            job,
            code: 1,
            stdout: String::new(),
            stderr: "karapace commit: env0000 is frozen\n".into(),
        });
        let s = app.status.clone().unwrap();
        assert!(s.error);
        assert_eq!(
            s.text,
            "commit env0000 failed (exit 1): karapace commit: env0000 is frozen"
        );
        assert!(app.running.is_none());
    }

    #[test]
    fn done_shows_once_the_list_is_read_again() {
        let mut app = app_with(1);
        let Some(Effect::Run(job)) = app.on_key(ch('c')) else {
            panic!()
        };
        app.on_msg(Msg::JobDone {
            job,
            code: 0,
            stdout: "{}".into(),
            stderr: String::new(),
        });
        assert!(app.running.is_none());
        assert_eq!(app.status, None);
        let mut r = app.rows[0].clone();
        r.rec.name = Some("renamed".into());
        app.on_msg(Msg::Rows(vec![r]));
        assert_eq!(app.status.as_ref().unwrap().text, "commit env0000: done");
    }

    #[test]
    fn the_list_shrinking_under_the_selection_keeps_it_valid() {
        let mut app = app_with(5);
        app.on_key(ch('G'));
        let keep = app.rows[1].clone();
        app.on_msg(Msg::Rows(vec![keep]));
        assert_eq!(app.selected, 0);
        app.on_msg(Msg::Rows(vec![]));
        assert!(app.current().is_none());
        assert_eq!(app.on_key(ch('D')), None);
    }

    #[test]
    fn the_selection_follows_its_environment_across_reloads() {
        let mut app = app_with(5);
        app.on_key(ch('j'));
        app.on_key(ch('j'));
        let mut rows = app.rows.clone();
        rows.remove(0);
        app.on_msg(Msg::Rows(rows));
        assert_eq!(app.current().unwrap().name(), "env0002");
    }

    #[test]
    fn alt_keys_are_not_plain_keys() {
        let mut app = app_with(2);
        assert_eq!(app.on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::ALT)), None);
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn views_open_and_close() {
        let mut app = app_with(2);
        assert_eq!(app.on_key(key(KeyCode::Enter)), Some(Effect::Detail(id(0))));
        assert_eq!(app.view, View::Detail);
        // j scrolls the details; the environment stays the same.
        app.on_key(ch('j'));
        assert_eq!((app.detail_scroll, app.selected), (1, 0));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.view, View::List);
        app.on_key(ch('S'));
        assert_eq!(app.view, View::Snapshots);
        app.on_key(ch('h'));
        assert_eq!(app.on_key(ch('U')), Some(Effect::StoreUsage));
        assert_eq!(app.view, View::Store);
        let Some(Effect::Run(job)) = app.on_key(ch('g')) else {
            panic!()
        };
        assert_eq!(job.args, vec!["gc", "--dry-run"]);
    }

    #[test]
    fn p_picks_a_preset_then_new_and_build_into_the_directory_given() {
        let mut app = app_with(1);
        app.on_key(ch('p'));
        assert_eq!(app.mode, Mode::Pick { selected: 0 });
        app.on_key(ch('j'));
        app.on_key(key(KeyCode::Down));
        app.on_key(ch('k'));
        let (preset, _) = presets()[1];
        app.on_key(key(KeyCode::Enter));
        // The directory's name is offered: the preset's.
        assert_eq!(
            app.mode,
            Mode::Prompt {
                ask: Ask::Preset(preset),
                env: None,
                input: preset.into()
            }
        );
        for _ in 0..preset.len() {
            app.on_key(key(KeyCode::Backspace));
        }
        for c in "work/web".chars() {
            app.on_key(ch(c));
        }
        let Some(Effect::Run(job)) = app.on_key(key(KeyCode::Enter)) else {
            panic!("no job")
        };
        assert_eq!(job.args, vec!["new", "work/web", "--preset", preset]);
        assert_eq!(job.then, vec![vec!["build", "work/web", "--name", "web"]]);
        assert!(app.running.is_some());
    }

    #[test]
    fn a_preset_directory_that_cannot_name_the_environment_runs_nothing() {
        let mut app = app_with(1);
        app.on_key(ch('p'));
        app.on_key(key(KeyCode::Enter));
        for _ in 0..presets()[0].0.len() {
            app.on_key(key(KeyCode::Backspace));
        }
        for c in "/src/my.env".chars() {
            app.on_key(ch(c));
        }
        assert_eq!(app.on_key(key(KeyCode::Enter)), None);
        let s = app.status.clone().unwrap();
        assert!(
            s.error && s.text.starts_with("/src/my.env: ") && s.text.contains("invalid name"),
            "{s:?}"
        );
        assert!(app.running.is_none());
        // Esc in the chooser cancels it.
        app.on_key(ch('p'));
        assert_eq!(app.on_key(key(KeyCode::Esc)), None);
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn empty_store_keys_do_nothing() {
        let mut app = app_with(0);
        for c in ['j', 'k', 'G', 'g', 'e', 'D', 'r', 'f', 'c'] {
            assert_eq!(app.on_key(ch(c)), None);
        }
        assert_eq!(app.on_key(key(KeyCode::Enter)), None);
        assert_eq!(app.mode, Mode::Normal);
    }
}
