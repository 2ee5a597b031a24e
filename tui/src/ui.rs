//! Drawing the app: a pure function of its state onto a ratatui frame.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TRow, Table, Wrap};
use ratatui::Frame;

use crate::app::{App, Ask, Mode, View};

pub const KEYS: &[(&str, &str)] = &[
    ("j k  Down Up", "move (mouse wheel too)"),
    ("g G  Home End", "first, last"),
    ("PgDn PgUp ^d ^u", "a page, half a page"),
    ("Enter l Right", "details of the environment"),
    ("Esc h Left", "back to the list; clear the filter"),
    ("/", "filter by name, id prefix, image or state"),
    ("s", "sort: name, state, last used, size"),
    ("S", "snapshots (Enter: diff, R: restore)"),
    ("U", "store: usage, g gc preview, v verify, X gc"),
    ("e", "enter: a shell inside (the TUI comes back on exit)"),
    ("x !", "exec a command inside"),
    ("b p", "build from a manifest path, from a preset"),
    ("B", "rebuild from the environment's manifest"),
    ("c", "commit the writable layer as a snapshot"),
    ("r", "rename"),
    ("f a", "freeze, archive (asks first)"),
    ("t", "stop what runs inside (asks first)"),
    ("D", "destroy (asks first)"),
    ("Ctrl-C", "cancel the running action"),
    ("Ctrl-R F5", "reload the store"),
    ("?", "this help; Esc closes it"),
    ("q", "quit"),
];

struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn selected(&self) -> Style {
        if self.color {
            Style::default()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

pub fn render(f: &mut Frame, app: &App) {
    let t = Theme { color: !app.no_color };
    // A long message takes up to three lines: the path and the reason are
    // at its end.
    let width = f.area().width.max(1) as usize;
    let status_lines = (status_text(app).chars().count().div_ceil(width)).clamp(1, 3) as u16;
    let [main, progress, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(status_lines),
    ])
    .areas(f.area());
    match app.view {
        View::List => list(f, app, &t, main),
        View::Detail => detail(f, app, &t, main),
        View::Snapshots => snapshots(f, app, &t, main),
        View::Store => store(f, app, &t, main),
    }
    progress_line(f, app, &t, progress);
    status_bar(f, app, &t, status);
    match &app.mode {
        Mode::Help => help(f, &t),
        Mode::Confirm { question, .. } => {
            dialog(f, &t, "Confirm", &format!("{question}\n\ny: yes   any other key: no"))
        }
        Mode::Prompt { ask, input, .. } => {
            // A path typed in is relative to where the children run.
            let at = match ask {
                Ask::Build | Ask::Preset(_) if !app.cwd.is_empty() => format!("\nin {}", app.cwd),
                _ => String::new(),
            };
            dialog(
                f,
                &t,
                &ask.title(),
                &format!("{input}_{at}\n\nEnter: run   Esc: cancel"),
            )
        }
        Mode::Pick { selected } => pick(f, &t, *selected),
        _ => {}
    }
}

pub fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", U[i])
    }
}

fn ago(now: u64, t: u64) -> String {
    let d = now.saturating_sub(t);
    match d {
        0..60 => format!("{d}s ago"),
        60..3600 => format!("{}m ago", d / 60),
        3600..86400 => format!("{}h ago", d / 3600),
        _ => format!("{}d ago", d / 86400),
    }
}

fn list(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let title = format!(
        " karapace: {} of {} environments, by {}{} ",
        app.visible.len(),
        app.rows.len(),
        app.sort.as_str(),
        if app.filter.is_empty() {
            String::new()
        } else {
            format!(", filter \"{}\"", app.filter)
        }
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [head, body, filter] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(u16::from(app.mode == Mode::Filter)),
    ])
    .areas(inner);
    if app.mode == Mode::Filter {
        f.render_widget(Paragraph::new(format!("/{}_", app.filter)), filter);
    }
    if app.visible.is_empty() {
        let msg = if !app.loaded {
            "loading..."
        } else if app.rows.is_empty() {
            "No environments in this store. Press b to build one from a manifest, ? for help."
        } else {
            "No environment matches the filter (Esc clears it)."
        };
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), body);
        return;
    }
    let h = body.height as usize;
    app.page.set(h);
    // Keep the selection in view; only the lines shown are built.
    let mut off = app.offset.get().min(app.visible.len().saturating_sub(1));
    if app.selected < off {
        off = app.selected;
    } else if app.selected >= off + h {
        off = app.selected + 1 - h;
    }
    app.offset.set(off);
    // Below 64 columns only the marker, the name and the state fit.
    let wide = body.width >= 64;
    let widths: Vec<Constraint> = if wide {
        vec![
            Constraint::Length(2),
            Constraint::Fill(3),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Fill(2),
            Constraint::Length(7),
            Constraint::Length(8),
        ]
    } else {
        vec![Constraint::Length(2), Constraint::Fill(1), Constraint::Length(8)]
    };
    let pick = |cells: Vec<Cell<'static>>| -> Vec<Cell<'static>> {
        if wide {
            cells
        } else {
            cells
                .into_iter()
                .enumerate()
                .filter(|(i, _)| [0, 1, 3].contains(i))
                .map(|(_, c)| c)
                .collect()
        }
    };
    let header = TRow::new(pick(
        ["", "NAME", "ID", "STATE", "IMAGE", "SIZE", "USED"]
            .into_iter()
            .map(Cell::from)
            .collect(),
    ))
    .style(t.bold());
    f.render_widget(Table::new(Vec::<TRow>::new(), widths.clone()).header(header), head);
    let rows: Vec<TRow> = app.visible[off..(off + h).min(app.visible.len())]
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let r = &app.rows[i];
            let running = r.state == libkp::env::State::Running;
            let state_style = match r.state {
                libkp::env::State::Running => t.fg(Color::Green),
                libkp::env::State::Frozen => t.fg(Color::Cyan),
                libkp::env::State::Archived => t.fg(Color::DarkGray),
                libkp::env::State::Built => Style::default(),
            };
            let row = TRow::new(pick(vec![
                Cell::from(format!(
                    "{}{}",
                    if off + n == app.selected { ">" } else { " " },
                    if running { "*" } else { " " }
                ))
                .style(t.fg(Color::Green)),
                Cell::from(r.name().to_string()),
                Cell::from(r.rec.short_id()),
                Cell::from(r.state.as_str()).style(state_style),
                Cell::from(r.rec.image.clone().unwrap_or_else(|| "-".into())),
                Cell::from(r.size.map(human_bytes).unwrap_or_else(|| "-".into())),
                Cell::from(ago(app.now, r.rec.updated)),
            ]));
            if off + n == app.selected {
                row.style(t.selected())
            } else {
                row
            }
        })
        .collect();
    f.render_widget(Table::new(rows, widths), body);
}

fn kv(k: &str, v: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{k:<12}"), Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(v),
    ])
}

fn detail(f: &mut Frame, app: &App, _t: &Theme, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" environment (Esc: back) ");
    let Some(r) = app.current() else {
        f.render_widget(Paragraph::new("No environment selected.").block(block), area);
        return;
    };
    let rec = &r.rec;
    let mut lines = vec![
        kv("name", rec.name.clone().unwrap_or_else(|| "-".into())),
        kv("env_id", rec.env_id.clone()),
        kv("state", r.state.as_str().into()),
        kv("origin", rec.origin.as_str().into()),
        kv("manifest", rec.manifest.clone().unwrap_or_else(|| "-".into())),
        kv("image", rec.image.clone().unwrap_or_else(|| "-".into())),
        kv("created", libkp::date::utc(rec.created)),
        kv(
            "updated",
            format!("{} ({})", libkp::date::utc(rec.updated), ago(app.now, rec.updated)),
        ),
        kv(
            "size",
            r.size.map(human_bytes).unwrap_or_else(|| "-".into()) + " (writable layer)",
        ),
        kv("snapshots", rec.snapshots.len().to_string()),
    ];
    // The lock and the drift first: what is inside and what changed since.
    match &app.detail {
        Some((id, extra)) if *id == rec.env_id => lines.extend(extra.iter().map(|l| Line::from(l.clone()))),
        _ => lines.push(Line::from("reading the lock and the drift...")),
    }
    lines.push(kv("layers", String::new()));
    for l in &rec.layers {
        lines.push(Line::from(format!("  {l}")));
    }
    if let Some(s) = &rec.settings {
        let v = serde_json::to_value(s).unwrap_or_default();
        if let Some(obj) = v.as_object() {
            // The packages are the lock's, shown above.
            for (k, val) in obj.iter().filter(|(k, _)| *k != "system") {
                lines.push(kv(k, setting(val)));
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((app.detail_scroll.min(u16::MAX as usize) as u16, 0)),
        area,
    );
}

/// A setting in one line: a group of switches as the ones that are on.
fn setting(v: &serde_json::Value) -> String {
    match v.as_object() {
        Some(o) if !o.is_empty() && o.values().all(|x| x.is_boolean()) => {
            let on: Vec<&str> = o
                .iter()
                .filter(|(_, x)| x.as_bool() == Some(true))
                .map(|(k, _)| k.as_str())
                .collect();
            if on.is_empty() {
                "none".into()
            } else {
                on.join(", ")
            }
        }
        _ => v.to_string(),
    }
}

fn snapshots(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let Some(r) = app.current() else {
        f.render_widget(
            Paragraph::new("No environment selected.").block(Block::bordered()),
            area,
        );
        return;
    };
    let title = format!(
        " snapshots of {} (Enter: diff, R: restore, c: commit, Esc: back) ",
        r.rec.display_name()
    );
    let [top, bottom] = Layout::vertical([Constraint::Percentage(40), Constraint::Min(3)]).areas(area);
    let block = Block::default().borders(Borders::ALL).title(title);
    if r.rec.snapshots.is_empty() {
        f.render_widget(
            Paragraph::new("No snapshots yet; c commits the writable layer.").block(block),
            top,
        );
    } else {
        let rows: Vec<TRow> = r
            .rec
            .snapshots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let row = TRow::new(vec![
                    s.layer[..12.min(s.layer.len())].to_string(),
                    libkp::date::utc(s.created),
                    human_bytes(s.size_added),
                ]);
                if i == app.snap_selected {
                    row.style(t.selected())
                } else {
                    row
                }
            })
            .collect();
        let widths = [Constraint::Length(12), Constraint::Length(20), Constraint::Min(8)];
        let header = TRow::new(["SNAPSHOT", "CREATED", "ADDED"]).style(t.bold());
        f.render_widget(Table::new(rows, widths).header(header).block(block), top);
    }
    let (title, text): (String, Vec<Line>) = match &app.diff {
        None => (
            " diff ".into(),
            vec![Line::from("Enter shows what the selected snapshot changed.")],
        ),
        Some((s, Ok(lines))) if lines.is_empty() => (
            format!(" diff {} ", &s[..12.min(s.len())]),
            vec![Line::from("no changes")],
        ),
        Some((s, Ok(lines))) => (
            format!(" diff {} ", &s[..12.min(s.len())]),
            lines.iter().map(|l| Line::from(l.as_str())).collect(),
        ),
        Some((s, Err(e))) => (
            format!(" diff {} ", &s[..12.min(s.len())]),
            vec![Line::from(e.as_str())],
        ),
    };
    f.render_widget(Paragraph::new(text).block(Block::bordered().title(title)), bottom);
}

fn store(f: &mut Frame, app: &App, _t: &Theme, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" store (g: gc preview, X: gc, v: verify, Esc: back) ");
    let mut lines = vec![kv("store", app.store.clone()), Line::from("")];
    match &app.usage {
        None => lines.push(Line::from("measuring...")),
        Some(Err(e)) => lines.push(Line::from(format!("usage: {e}"))),
        Some(Ok(u)) => {
            let mut total = u.envs_bytes;
            for (k, n, b) in &u.kinds {
                lines.push(kv(k, format!("{n} objects, {}", human_bytes(*b))));
                total += b;
            }
            lines.push(kv("envs", format!("{} in writable layers", human_bytes(u.envs_bytes))));
            lines.push(kv("total", human_bytes(total)));
        }
    }
    lines.push(Line::from(""));
    match &app.gc_preview {
        None => lines.push(kv("gc", "g previews what gc would remove".into())),
        Some(v) => {
            let n = v["removed"].as_array().map(|a| a.len()).unwrap_or(0);
            let b = v["bytes"].as_u64().unwrap_or(0);
            lines.push(kv("gc", format!("would remove {n} objects, {}", human_bytes(b))));
        }
    }
    match &app.verify {
        None => lines.push(kv("verify", "v re-hashes every object".into())),
        Some(v) => {
            let ok = v["ok"].as_bool().unwrap_or(false);
            let n = v["objects"].as_u64().unwrap_or(0);
            lines.push(kv(
                "verify",
                format!(
                    "{} ({n} objects checked)",
                    if ok {
                        "ok"
                    } else {
                        "PROBLEMS: see karapace verify-store"
                    }
                ),
            ));
        }
    }
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), area);
}

const SPIN: [char; 4] = ['|', '/', '-', '\\'];

fn progress_line(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    if let Some(r) = &app.running {
        let secs = app.tick.saturating_sub(r.started_tick) / 10;
        let text = format!(
            "{} {}... {secs}s (Ctrl-C cancels)",
            SPIN[(app.tick % 4) as usize],
            r.label
        );
        f.render_widget(Paragraph::new(text).style(t.fg(Color::Yellow)), area);
    }
}

fn status_text(app: &App) -> String {
    match &app.status {
        Some(s) if s.error => format!("error: {}", s.text),
        Some(s) => s.text.clone(),
        None => "?: help  /: filter  s: sort  Enter: details  e: enter  q: quit".into(),
    }
}

fn status_bar(f: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let style = match &app.status {
        Some(s) if s.error => t.fg(Color::Red).add_modifier(Modifier::BOLD),
        Some(_) => Style::default(),
        None => t.fg(Color::DarkGray),
    };
    // Wrapped by characters, not words: a path has no spaces to break at.
    let text: Vec<Line> = status_text(app)
        .chars()
        .collect::<Vec<_>>()
        .chunks(area.width.max(1) as usize)
        .map(|c| Line::from(c.iter().collect::<String>()))
        .collect();
    f.render_widget(Paragraph::new(text).style(style), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn help(f: &mut Frame, t: &Theme) {
    let area = centered(f.area(), 76, KEYS.len() as u16 + 2);
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!("{k:<18}"), t.bold()), Span::raw(*what)]))
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys (Esc closes) ")),
        area,
    );
}

/// The preset chooser: one line per preset, its name and summary.
fn pick(f: &mut Frame, t: &Theme, selected: usize) {
    let presets = crate::app::presets();
    let area = centered(f.area(), 72, presets.len() as u16 + 4);
    let mut lines: Vec<Line> = presets
        .iter()
        .enumerate()
        .map(|(i, (name, text))| {
            let line = Line::from(format!(
                "{}{name:<12}{}",
                if i == selected { ">" } else { " " },
                libkp::schema::templates::summary(text)
            ));
            if i == selected {
                line.style(t.selected())
            } else {
                line
            }
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from("j k: move   Enter: choose   Esc: cancel"));
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" Build from a preset ")
                .border_style(t.fg(Color::Yellow)),
        ),
        area,
    );
}

fn dialog(f: &mut Frame, t: &Theme, title: &str, text: &str) {
    let area = centered(f.area(), 64, 7);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(text.to_string()).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(format!(" {title} "))
                .border_style(t.fg(Color::Yellow)),
        ),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{app_with, key, rec};
    use crate::app::{Msg, Row};
    use crossterm::event::KeyCode;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(app: &App, w: u16, h: u16) -> String {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| render(f, app)).unwrap();
        let buf = term.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn empty_store_says_so() {
        let app = app_with(0);
        let s = screen(&app, 80, 24);
        assert!(s.contains("0 of 0 environments"), "{s}");
        assert!(s.contains("No environments in this store"), "{s}");
        assert!(s.contains("?: help"), "{s}");
    }

    #[test]
    fn list_shows_the_columns_and_marks_running() {
        let mut app = app_with(0);
        let mut rows = vec![Row::new(rec(1, Some("web")), libkp::env::State::Running)];
        rows.push(Row::new(rec(2, None), libkp::env::State::Frozen));
        app.on_msg(Msg::Rows(rows));
        app.on_msg(Msg::Sizes(vec![(crate::app::tests::id(1), 2048)]));
        let s = screen(&app, 80, 24);
        let web = s.lines().find(|l| l.contains("web")).unwrap();
        // Selected (>) and running (*), in text as well as in color.
        assert!(web.contains(">* web"), "{web}");
        assert!(web.contains("0001eeeeeeee"), "{web}");
        assert!(web.contains("running"), "{web}");
        assert!(web.contains("debian:12"), "{web}");
        assert!(web.contains("2.0K"), "{web}");
        assert!(web.contains("59m ago"), "{web}");
        let other = s.lines().find(|l| l.contains("frozen")).unwrap();
        assert!(other.contains(" - "), "{other}");
        assert!(s.contains("NAME") && s.contains("STATE") && s.contains("USED"), "{s}");
    }

    #[test]
    fn long_names_are_cut_not_wrapped() {
        let mut app = app_with(0);
        let long = "x".repeat(200);
        app.on_msg(Msg::Rows(vec![Row::new(rec(7, Some(&long)), libkp::env::State::Built)]));
        let s = screen(&app, 80, 24);
        let line = s.lines().find(|l| l.contains("xxxx")).unwrap();
        // One line, with the id and state still shown beside the name.
        assert!(line.contains("0007eeeeeeee") && line.contains("built"), "{line}");
        assert_eq!(s.lines().filter(|l| l.contains("xxxx")).count(), 1);
    }

    #[test]
    fn a_thousand_environments_scroll_with_the_selection() {
        let mut app = app_with(1000);
        let s = screen(&app, 80, 24);
        assert!(s.contains("1000 of 1000 environments"), "{s}");
        assert!(s.contains("env0000") && !s.contains("env0100"), "{s}");
        app.on_key(key(KeyCode::End));
        let s = screen(&app, 80, 24);
        assert!(s.contains("env0999") && !s.contains("env0000"), "{s}");
    }

    #[test]
    fn errors_show_in_the_status_bar() {
        let mut app = app_with(3);
        app.on_msg(Msg::LoadError("/nowhere: no such store".into()));
        let s = screen(&app, 80, 24);
        let last = s.lines().last().unwrap();
        assert!(last.starts_with("error: store: /nowhere: no such store"), "{last}");
        // A long one wraps onto up to three lines and keeps its end in view.
        let long = format!("store: corrupt metadata /{}/x.json: not JSON", "d".repeat(90));
        app.on_msg(Msg::LoadError(long));
        let s = screen(&app, 80, 24);
        assert!(
            s.lines().last().unwrap().trim_end().ends_with("x.json: not JSON"),
            "{s}"
        );
        assert!(s.contains("env0002"), "{s}");
    }

    #[test]
    fn help_lists_every_key_at_80x24() {
        let mut app = app_with(3);
        app.on_key(key(KeyCode::Char('?')));
        let s = screen(&app, 80, 24);
        for (k, _) in KEYS {
            assert!(s.contains(k), "{k} missing:\n{s}");
        }
    }

    #[test]
    fn detail_snapshots_and_store_views_render() {
        let mut app = app_with(0);
        let mut r = rec(3, Some("db"));
        r.layers = vec!["a".repeat(64), "b".repeat(64)];
        r.manifest = Some("/src/db/karapace.toml".into());
        r.snapshots.push(libkp::env::Snapshot {
            layer: "c".repeat(64),
            created: 1_700_000_100,
            size_added: 10,
        });
        app.on_msg(Msg::Rows(vec![Row::new(r, libkp::env::State::Built)]));
        app.on_key(key(KeyCode::Enter));
        let s = screen(&app, 80, 24);
        assert!(
            s.contains("/src/db/karapace.toml") && s.contains(&"b".repeat(64)),
            "{s}"
        );
        app.on_key(key(KeyCode::Esc));
        app.on_key(key(KeyCode::Char('S')));
        app.on_msg(Msg::Diff {
            snapshot: "c".repeat(64),
            lines: Ok(vec!["A /etc/motd".into()]),
        });
        let s = screen(&app, 80, 24);
        assert!(
            s.contains("cccccccccccc") && s.contains("2023-11-14T22:15:00Z") && s.contains("A /etc/motd"),
            "{s}"
        );
        app.on_key(key(KeyCode::Char('U')));
        app.on_msg(Msg::Usage(Ok(crate::app::Usage {
            kinds: vec![("blob".into(), 4, 4096)],
            envs_bytes: 0,
        })));
        app.gc_preview = Some(serde_json::json!({"dry_run": true, "removed": [{}, {}], "bytes": 10}));
        let s = screen(&app, 80, 24);
        assert!(
            s.contains("4 objects, 4.0K") && s.contains("would remove 2 objects, 10B"),
            "{s}"
        );
    }

    #[test]
    fn a_path_prompt_says_what_it_is_relative_to() {
        let mut app = app_with(1);
        app.cwd = "/home/u/src".into();
        app.on_key(key(KeyCode::Char('p')));
        app.on_key(key(KeyCode::Enter));
        let s = screen(&app, 80, 24);
        assert!(s.contains("minimal_") && s.contains("in /home/u/src"), "{s}");
        app.on_key(key(KeyCode::Esc));
        app.on_key(key(KeyCode::Char('r')));
        assert!(!screen(&app, 80, 24).contains("in /home/u/src"));
    }

    #[test]
    fn the_preset_chooser_lists_every_preset_at_80x24() {
        let mut app = app_with(3);
        app.on_key(key(KeyCode::Char('p')));
        app.on_key(key(KeyCode::Down));
        let s = screen(&app, 80, 24);
        assert!(s.contains("Build from a preset"), "{s}");
        for (i, (name, text)) in crate::app::presets().iter().enumerate() {
            let line = s
                .lines()
                .find(|l| l.contains(&format!(" {name} ")) || l.contains(&format!(">{name} ")))
                .unwrap_or_else(|| panic!("{name}:\n{s}"));
            let summary: String = libkp::schema::templates::summary(text).chars().take(20).collect();
            assert!(line.contains(&summary), "{line}");
            assert_eq!(line.contains(&format!(">{name}")), i == 1, "{line}");
        }
    }

    #[test]
    fn resize_keeps_the_selection_visible() {
        let mut app = app_with(100);
        for _ in 0..50 {
            app.on_key(key(KeyCode::Down));
        }
        assert!(screen(&app, 120, 40).contains("env0050"));
        assert!(screen(&app, 40, 10).contains("env0050"));
        assert!(screen(&app, 80, 24).contains("env0050"));
    }

    #[test]
    fn no_color_uses_no_colors() {
        let mut app = app_with(2);
        app.on_msg(Msg::LoadError("x".into()));
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        term.draw(|f| render(f, &app)).unwrap();
        let buf = term.backend().buffer();
        assert!(buf.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
        app.no_color = false;
        term.draw(|f| render(f, &app)).unwrap();
        assert!(term.backend().buffer().content.iter().any(|c| c.fg != Color::Reset));
    }
}
