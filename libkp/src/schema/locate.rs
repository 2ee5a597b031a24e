//! From byte offsets to what a person reads: line, column and dotted key.
//! `toml` reports a byte span; `toml_edit` keeps the span of every key and value,
//! so the deepest key whose key or value covers that span names the culprit.

use std::ops::Range;
use std::path::Path;

use toml_edit::{Document, Item, Table, Value};

use super::error::Location;

/// 1-based line and character column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A key path segment: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg::Key(s.to_string())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// Renders a path as a dotted key: `mounts.data`, `system.packages[2]`, and
/// `mounts."odd key"` when a key is not bare.
pub fn dotted(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                let bare = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    s.push_str(k);
                } else {
                    s.push_str(&format!("{k:?}"));
                }
            }
        }
    }
    s
}

/// The spans of a parsed document, for turning offsets into keys and keys into
/// positions. Parsing may fail (a syntax error): then nothing is known by key.
pub struct Spans<'a> {
    text: &'a str,
    doc: Option<Document<&'a str>>,
}

impl<'a> Spans<'a> {
    pub fn new(text: &'a str) -> Self {
        Spans {
            text,
            doc: Document::parse(text).ok(),
        }
    }

    /// The deepest key whose key or value span contains `offset`.
    pub fn key_at(&self, offset: usize) -> Option<String> {
        self.path_at(offset).map(|p| dotted(&p))
    }

    fn path_at(&self, offset: usize) -> Option<Vec<Seg>> {
        let doc = self.doc.as_ref()?;
        let mut best: Option<Vec<Seg>> = None;
        let mut path = Vec::new();
        walk_table(doc.as_table(), offset, &mut path, &mut best);
        best
    }

    /// The innermost table at `offset` (the root when none is), as a dotted
    /// key prefix: where a "missing field" is missing from.
    pub fn table_at(&self, offset: usize) -> Option<String> {
        let mut path = self.path_at(offset)?;
        while !path.is_empty() && !self.is_table(&path) {
            path.pop();
        }
        Some(dotted(&path)).filter(|p| !p.is_empty())
    }

    fn is_table(&self, path: &[Seg]) -> bool {
        let Some(doc) = self.doc.as_ref() else { return false };
        let mut node = Node::Table(doc.as_table());
        for seg in path {
            let next = match (seg, node) {
                (Seg::Key(k), Node::Table(t)) => t.get(k).and_then(Node::of_item),
                (Seg::Key(k), Node::Value(Value::InlineTable(t))) => t.get(k).map(Node::Value),
                (Seg::Index(i), Node::Tables(a)) => a.get(*i).map(Node::Table),
                (Seg::Index(i), Node::Value(Value::Array(a))) => a.get(*i).map(Node::Value),
                _ => None,
            };
            let Some(next) = next else { return false };
            node = next;
        }
        matches!(node, Node::Table(_) | Node::Value(Value::InlineTable(_)))
    }

    /// The span of the value at `path`, else of the nearest ancestor that has one.
    pub fn span_of(&self, path: &[Seg]) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut node = Node::Table(doc.as_table());
        let mut found = None;
        for seg in path {
            let next = match (seg, node) {
                (Seg::Key(k), Node::Table(t)) => t.get_key_value(k).map(|(key, it)| (key.span(), Node::of_item(it))),
                (Seg::Key(k), Node::Value(Value::InlineTable(t))) => {
                    t.get_key_value(k).map(|(key, it)| (key.span(), Node::of_item(it)))
                }
                (Seg::Index(i), Node::Value(Value::Array(a))) => a.get(*i).map(|v| (None, Some(Node::Value(v)))),
                (Seg::Index(i), Node::Tables(a)) => a.get(*i).map(|t| (None, Some(Node::Table(t)))),
                _ => None,
            };
            let Some((key_span, Some(next))) = next else {
                break;
            };
            found = next.span().or(key_span).or(found);
            node = next;
        }
        found
    }

    /// A location for a problem at `span` (or the start of the file), naming
    /// `key` or else the key found at that span.
    pub fn locate(&self, file: &Path, span: Option<Range<usize>>, key: Option<String>) -> Location {
        let start = span.as_ref().map_or(0, |s| s.start);
        let (line, column) = line_col(self.text, start);
        let key = key.or_else(|| span.and_then(|s| self.key_at(s.start)));
        Location {
            file: file.to_path_buf(),
            line,
            column,
            key,
        }
    }

    /// A location for a problem with the value at `path`.
    pub fn locate_path(&self, file: &Path, path: &[Seg]) -> Location {
        self.locate(file, self.span_of(path), Some(dotted(path)))
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Tables(&'a toml_edit::ArrayOfTables),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn of_item(item: &'a Item) -> Option<Node<'a>> {
        match item {
            Item::Table(t) => Some(Node::Table(t)),
            Item::ArrayOfTables(a) => Some(Node::Tables(a)),
            Item::Value(v) => Some(Node::Value(v)),
            Item::None => None,
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Table(t) => t.span(),
            Node::Tables(a) => a.span(),
            Node::Value(v) => v.span(),
        }
    }
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

fn consider(path: &[Seg], best: &mut Option<Vec<Seg>>) {
    let deeper = match best {
        Some(b) => path.len() >= b.len(),
        None => true,
    };
    if deeper {
        *best = Some(path.to_vec());
    }
}

fn walk_table(t: &Table, offset: usize, path: &mut Vec<Seg>, best: &mut Option<Vec<Seg>>) {
    for (name, _) in t.iter() {
        let Some((key, item)) = t.get_key_value(name) else {
            continue;
        };
        path.push(Seg::Key(name.to_string()));
        if contains(key.span(), offset) || contains(item.span(), offset) {
            consider(path, best);
        }
        walk_item(item, offset, path, best);
        path.pop();
    }
}

fn walk_item(item: &Item, offset: usize, path: &mut Vec<Seg>, best: &mut Option<Vec<Seg>>) {
    match item {
        Item::Table(t) => walk_table(t, offset, path, best),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                if contains(t.span(), offset) {
                    consider(path, best);
                }
                walk_table(t, offset, path, best);
                path.pop();
            }
        }
        Item::Value(v) => walk_value(v, offset, path, best),
        Item::None => {}
    }
}

fn walk_value(v: &Value, offset: usize, path: &mut Vec<Seg>, best: &mut Option<Vec<Seg>>) {
    match v {
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                if contains(v.span(), offset) {
                    consider(path, best);
                }
                walk_value(v, offset, path, best);
                path.pop();
            }
        }
        Value::InlineTable(t) => {
            for (name, _) in t.iter() {
                let Some((key, v)) = t.get_key_value(name) else {
                    continue;
                };
                path.push(Seg::Key(name.to_string()));
                if contains(key.span(), offset) || contains(v.span(), offset) {
                    consider(path, best);
                }
                walk_item(v, offset, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}
