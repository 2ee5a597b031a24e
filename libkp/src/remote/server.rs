//! The server side of protocol v1 (docs/protocol.md): one call per request,
//! independent of the HTTP library the binary uses.

use std::io::{self, Read, Seek};
use std::time::{Duration, Instant};

use super::{Error, Result};
use crate::hash::ObjectId;
use crate::object::Kind;
use crate::refs::Expect;
use crate::store::Store;

/// Largest body of a request that is not a pack upload.
pub const MAX_SMALL_BODY: u64 = 8 << 20;
/// Most objects one `lacks` or `fetch` request may name.
pub const MAX_IDS: usize = 100_000;

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
}

const TOKENS_META: &str = "server/tokens";

/// The server's tokens, kept as hashes in `meta/server/tokens.json`.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    /// (name, blake3 of the token in hex, scope)
    entries: Vec<(String, String, Scope)>,
}

impl Tokens {
    pub fn load(store: &Store) -> Result<Tokens> {
        let mut t = Tokens::default();
        let Some(v) = store.read_meta(TOKENS_META)? else {
            return Ok(t);
        };
        let bad = || {
            Error::Refused(format!(
                "{}: malformed token list",
                store.path("meta/server/tokens.json").display()
            ))
        };
        for e in v.get("tokens").and_then(|x| x.as_array()).ok_or_else(bad)? {
            let field = |k: &str| e.get(k).and_then(|x| x.as_str()).map(str::to_string).ok_or_else(bad);
            let scope = match field("scope")?.as_str() {
                "read" => Scope::Read,
                "write" => Scope::Write,
                _ => return Err(bad()),
            };
            t.entries.push((field("name")?, field("blake3")?, scope));
        }
        Ok(t)
    }

    /// Adds a token named `name` and returns it: the only time it is seen,
    /// only its hash is stored.
    pub fn add(store: &Store, name: &str, scope: Scope) -> Result<String> {
        crate::env::check_name(name)
            .map_err(|_| Error::Refused(format!("token name {name:?}: 1 to 64 characters of A-Z a-z 0-9 _ -")))?;
        let mut t = Tokens::load(store)?;
        if t.entries.iter().any(|(n, _, _)| n == name) {
            return Err(Error::Refused(format!(
                "a token named {name:?} exists; remove it first"
            )));
        }
        let mut raw = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .map_err(crate::store::Error::input("read", std::path::Path::new("/dev/urandom")))?;
        let token = format!("kpt_{}", crate::hash::hex(&raw));
        t.entries.push((name.to_string(), hash_token(&token), scope));
        t.save(store)?;
        Ok(token)
    }

    /// Removes the token `name`; false when there was none.
    pub fn remove(store: &Store, name: &str) -> Result<bool> {
        let mut t = Tokens::load(store)?;
        let before = t.entries.len();
        t.entries.retain(|(n, _, _)| n != name);
        if t.entries.len() == before {
            return Ok(false);
        }
        t.save(store)?;
        Ok(true)
    }

    /// Names and scopes, sorted.
    pub fn list(&self) -> Vec<(String, Scope)> {
        let mut v: Vec<_> = self.entries.iter().map(|(n, _, s)| (n.clone(), *s)).collect();
        v.sort();
        v
    }

    fn save(&self, store: &Store) -> Result<()> {
        let list: Vec<_> = self
            .entries
            .iter()
            .map(|(n, h, s)| {
                serde_json::json!({"name": n, "blake3": h, "scope": if *s == Scope::Write { "write" } else { "read" }})
            })
            .collect();
        Ok(store.write_meta(TOKENS_META, &serde_json::json!({ "tokens": list }))?)
    }

    /// The token's name and scope, if it is one of ours.
    fn check(&self, token: &str) -> Option<(&str, Scope)> {
        let h = hash_token(token);
        self.entries
            .iter()
            .find(|(_, hh, _)| *hh == h)
            .map(|(n, _, s)| (n.as_str(), *s))
    }
}

fn hash_token(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// A reply's body.
pub enum Body {
    Text(String),
    /// A file (a pack), read from its start, of this many bytes.
    File(std::fs::File, u64),
}

pub struct Reply {
    pub status: u16,
    pub body: Body,
    /// Who asked: the token's name, `anonymous`, or `-` when refused before.
    pub who: String,
}

impl Reply {
    fn text(status: u16, text: impl Into<String>) -> Reply {
        Reply {
            status,
            body: Body::Text(text.into()),
            who: "-".into(),
        }
    }
}

/// A request as the binary read it.
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `Content-Length`, when sent.
    pub length: Option<u64>,
    pub body: &'a mut dyn Read,
}

/// The server: a store, its tokens, its limits.
pub struct Service {
    pub store: Store,
    pub tokens: Tokens,
    /// Anyone may read (list refs, fetch) without a token.
    pub anonymous_read: bool,
    /// Largest pack a push may upload.
    pub max_pack: u64,
    /// How slowly a body may come.
    pub pace: Pace,
    /// Held while a ref is compared and swapped: two requests moving refs at
    /// once take turns instead of one finding the other's lock file (which
    /// a request from another process on the store still may: 503).
    pub ref_updates: std::sync::Mutex<()>,
}

/// How slowly a request or answer body may travel (docs/protocol.md,
/// "Limits"): it has `timeout` plus one second per `min_rate` bytes moved so
/// far, as Apache's mod_reqtimeout counts. The binary also makes no single
/// read or write wait longer than `timeout`, so the check comes around.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub timeout: Duration,
    /// Bytes per second, at least 1.
    pub min_rate: u64,
}

impl Pace {
    /// The time `n` bytes may take.
    pub fn allowed(&self, n: u64) -> Duration {
        self.timeout + Duration::from_secs(n / self.min_rate.max(1))
    }
}

/// A reader held to a [`Pace`] from its creation: a read that waited out the
/// socket's timeout, or that ends past the time the bytes so far are
/// allowed, fails with `TimedOut`, and every read after it too.
pub struct Paced<R> {
    inner: R,
    pace: Pace,
    start: Instant,
    n: u64,
    failed: bool,
}

impl<R> Paced<R> {
    pub fn new(inner: R, pace: Pace) -> Paced<R> {
        Paced {
            inner,
            pace,
            start: Instant::now(),
            n: 0,
            failed: false,
        }
    }

    fn slow(&mut self, why: String) -> io::Error {
        self.failed = true;
        io::Error::new(io::ErrorKind::TimedOut, why)
    }
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let secs = self.pace.timeout.as_secs();
        if self.failed {
            return Err(self.slow(format!("too slow (over {secs} s)")));
        }
        let k = match self.inner.read(buf) {
            // SO_RCVTIMEO's expiry is EAGAIN.
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(self.slow(format!("nothing came for {secs} s")))
            }
            r => r?,
        };
        self.n += k as u64;
        if self.start.elapsed() > self.pace.allowed(self.n) {
            let rate = self.pace.min_rate;
            return Err(self.slow(format!(
                "{} bytes in {} s: slower than {rate} bytes/s after the first {secs} s",
                self.n,
                self.start.elapsed().as_secs()
            )));
        }
        Ok(k)
    }
}

enum Endpoint {
    Refs,
    Lacks,
    Fetch,
    Pack,
    UpdateRef,
}

/// The endpoint a path names; `Err` is the reply refusing it. Nothing in a
/// URL is ever a file name: a path is one of the fixed ones or refused, and
/// one with `%`, `..` or a second `/` in a row is refused as traversal.
fn route(method: &str, url: &str) -> std::result::Result<Endpoint, Reply> {
    let path = url.split_once('?').map_or(url, |(p, _)| p);
    if path.contains('%') || path.contains("..") || path.contains("//") || path.contains('\\') {
        return Err(Reply::text(
            400,
            "refused: the path has %, .., // or \\ (no traversal)\n",
        ));
    }
    let Some(rest) = path.strip_prefix("/v1/") else {
        if path.starts_with("/v") {
            return Err(Reply::text(
                404,
                "unknown protocol version: this server speaks v1 (/v1/...)\n",
            ));
        }
        return Err(Reply::text(404, "not found\n"));
    };
    let ep = match (method, rest) {
        ("GET", "refs") => Endpoint::Refs,
        ("POST", "lacks") => Endpoint::Lacks,
        ("POST", "fetch") => Endpoint::Fetch,
        ("POST", "pack") => Endpoint::Pack,
        ("POST", "update-ref") => Endpoint::UpdateRef,
        (_, "refs" | "lacks" | "fetch" | "pack" | "update-ref") => {
            return Err(Reply::text(405, "method not allowed\n"))
        }
        _ => return Err(Reply::text(404, "not found\n")),
    };
    Ok(ep)
}

/// A reader that fails once more than `limit` bytes come.
struct Limited<'a> {
    inner: &'a mut dyn Read,
    left: u64,
}

impl Read for Limited<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "the body is over the server's limit",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl Service {
    pub fn handle(&self, req: Request<'_>) -> Reply {
        let ep = route(req.method, req.url);
        let limit = match ep {
            Ok(Endpoint::Pack) => self.max_pack,
            _ => MAX_SMALL_BODY,
        };
        let mut paced = Paced::new(req.body, self.pace);
        let mut body = Limited {
            inner: &mut paced,
            left: limit,
        };
        let (reply, drain) = self.answer(ep, req.authorization, req.length, limit, &mut body);
        // What the answer left unread is read here, at the same pace and
        // within the same limit, so a client still sending its body gets
        // the answer and the connection can carry its next request. Not the
        // body of a request refused before its token was known, nor one
        // declared over the limit: the HTTP layer reads at most 64 KiB of
        // it and ends the connection (after a timeout, reading fails at
        // once and it ends it too).
        if drain {
            let _ = io::copy(&mut body, &mut io::sink());
        }
        reply
    }

    /// The reply, and whether the rest of the body is to be read.
    fn answer(
        &self,
        ep: std::result::Result<Endpoint, Reply>,
        authorization: Option<&str>,
        length: Option<u64>,
        limit: u64,
        body: &mut dyn Read,
    ) -> (Reply, bool) {
        let ep = match ep {
            Ok(ep) => ep,
            Err(r) => return (r, false),
        };
        let need = match ep {
            Endpoint::Pack | Endpoint::UpdateRef => Scope::Write,
            _ => Scope::Read,
        };
        let who = match self.authorize(authorization, need) {
            Ok(who) => who,
            // A known token (403) gets its answer after its body.
            Err(r) => {
                let known = r.status == 403;
                return (r, known);
            }
        };
        if length.is_some_and(|n| n > limit) {
            let mut r = Reply::text(413, format!("the body is over the server's limit of {limit} bytes\n"));
            r.who = who;
            return (r, false);
        }
        let mut reply = match ep {
            Endpoint::Refs => self.refs(),
            Endpoint::Lacks => self.lacks(body),
            Endpoint::Fetch => self.fetch(body),
            Endpoint::Pack => self.receive(body),
            Endpoint::UpdateRef => self.update_ref(body),
        }
        .unwrap_or_else(|e| error_reply(&e));
        reply.who = who;
        (reply, true)
    }

    fn authorize(&self, header: Option<&str>, need: Scope) -> std::result::Result<String, Reply> {
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
        match token {
            None if need == Scope::Read && self.anonymous_read => Ok("anonymous".into()),
            None => Err(Reply::text(401, "a token is needed (Authorization: Bearer TOKEN)\n")),
            Some(t) => match self.tokens.check(t) {
                None => Err(Reply::text(401, "unknown token\n")),
                Some((name, scope)) if scope < need => {
                    let mut r = Reply::text(403, format!("token {name} may read, not write\n"));
                    r.who = name.into();
                    Err(r)
                }
                Some((name, _)) => Ok(name.into()),
            },
        }
    }

    fn refs(&self) -> Result<Reply> {
        let mut out = String::new();
        for (name, id) in self.store.list_refs("refs/")? {
            out.push_str(&format!("{id} {name}\n"));
        }
        Ok(Reply::text(200, out))
    }

    fn lacks(&self, body: &mut dyn Read) -> Result<Reply> {
        let mut out = String::new();
        for (kind, id) in read_ids(body)? {
            if !self.store.has(kind, &id) {
                out.push_str(&format!("{kind} {id}\n"));
            }
        }
        Ok(Reply::text(200, out))
    }

    fn fetch(&self, body: &mut dyn Read) -> Result<Reply> {
        let ids = read_ids(body)?;
        let mut file =
            tempfile::tempfile().map_err(crate::store::Error::store("create", std::path::Path::new("$TMPDIR")))?;
        crate::pack::write_pack(&self.store, &ids, &mut file)?;
        let len = file
            .stream_position()
            .map_err(crate::store::Error::store("seek", std::path::Path::new("$TMPDIR")))?;
        file.rewind()
            .map_err(crate::store::Error::store("seek", std::path::Path::new("$TMPDIR")))?;
        Ok(Reply {
            status: 200,
            body: Body::File(file, len),
            who: String::new(),
        })
    }

    fn receive(&self, body: &mut dyn Read) -> Result<Reply> {
        let mut q = crate::pack::Quarantine::new(&self.store)?;
        q.add_pack(body)?;
        let stats = q.publish()?;
        Ok(Reply::text(
            200,
            format!("{} {}\n", stats.objects, stats.objects - stats.present),
        ))
    }

    fn update_ref(&self, body: &mut dyn Read) -> Result<Reply> {
        let text = read_text(body)?;
        let fields: Vec<&str> = text.trim_end_matches('\n').split(' ').collect();
        let [name, old, new] = fields[..] else {
            return Err(Error::Refused(
                "update-ref: expected `REF OLD NEW` (OLD, NEW: an id or -)".into(),
            ));
        };
        crate::refs::check_name(name)?;
        let id = |s: &str| -> Result<Option<ObjectId>> {
            if s == "-" {
                return Ok(None);
            }
            ObjectId::from_hex(s)
                .filter(|_| s.len() == 64)
                .map(Some)
                .ok_or_else(|| Error::Refused(format!("update-ref: {s:?} is neither a 64-digit id nor -")))
        };
        let (old, new) = (id(old)?, id(new)?);
        if let Some(n) = new {
            let Some(kind) = self.store.kind_of(&n) else {
                return Err(Error::Refused(format!(
                    "update-ref {name}: {n} is not on the server; push its objects first"
                )));
            };
            if let Some((k, missing)) = crate::pack::first_missing(&self.store, (kind, n))? {
                return Err(Error::Refused(format!(
                    "update-ref {name}: {kind} {n} reaches {k} {missing}, which is not on the server"
                )));
            }
        }
        let expect = old.map_or(Expect::Absent, Expect::Is);
        let _turn = self.ref_updates.lock().unwrap_or_else(|e| e.into_inner());
        match self.store.update_ref(name, new, expect) {
            Ok(()) => Ok(Reply::text(200, "ok\n")),
            Err(crate::refs::Error::Mismatch { actual, .. }) => Ok(Reply::text(
                409,
                format!(
                    "conflict: {name} is {} on the server, not {}\n",
                    actual.map_or("absent".into(), |a| a.to_hex()),
                    old.map_or("absent".into(), |a| a.to_hex())
                ),
            )),
            Err(crate::refs::Error::Locked { pid, .. }) => Ok(Reply::text(
                503,
                format!("busy: {name} is being updated by another process (pid {pid}); retry after 1 s\n"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

fn error_reply(e: &Error) -> Reply {
    let status = match e {
        Error::Pack(crate::pack::Error::Read(io)) | Error::Body(io) => match io.kind() {
            io::ErrorKind::FileTooLarge => 413,
            io::ErrorKind::TimedOut => 408,
            _ => 400,
        },
        Error::Pack(crate::pack::Error::Bad(_)) | Error::Refused(_) => 400,
        Error::Refs(crate::refs::Error::InvalidName { .. }) => 400,
        _ => 500,
    };
    Reply::text(status, format!("{e}\n"))
}

fn read_text(body: &mut dyn Read) -> Result<String> {
    let mut text = String::new();
    body.read_to_string(&mut text).map_err(Error::Body)?;
    Ok(text)
}

/// `KIND ID` lines.
pub(crate) fn read_ids(body: &mut dyn Read) -> Result<Vec<(Kind, ObjectId)>> {
    let text = read_text(body)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let parsed = line.split_once(' ').and_then(|(k, id)| {
            Some((
                k.parse::<Kind>().ok()?,
                ObjectId::from_hex(id).filter(|_| id.len() == 64)?,
            ))
        });
        let Some(o) = parsed else {
            return Err(Error::Refused(format!("expected `KIND ID` lines, got {line:?}")));
        };
        out.push(o);
        if out.len() > MAX_IDS {
            return Err(Error::Refused(format!("more than {MAX_IDS} ids in one request")));
        }
    }
    Ok(out)
}
