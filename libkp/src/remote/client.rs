//! The client side of protocol v1: requests to a server, and push and pull.

use std::io::{Read, Seek};
use std::time::Duration;

use super::config::RemoteConfig;
use super::{Error, Result};
use crate::hash::ObjectId;
use crate::object::Kind;
use crate::store::Store;

/// Ids per `lacks` or `fetch` request (the server takes up to
/// [`super::server::MAX_IDS`]).
const BATCH: usize = 10_000;

type Response = ureq::http::Response<ureq::Body>;
/// Sends one request to a URL with an `Authorization` value.
type Sender<'a> = dyn Fn(&str, Option<String>) -> std::result::Result<Response, ureq::Error> + 'a;

/// Tries of one request: the first and three more after no answer or a 503.
const TRIES: u32 = 4;
/// The longest wait a 503's Retry-After is followed for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A server, as the client reaches it.
pub struct Remote {
    url: String,
    token: Option<String>,
    http: crate::net::Client,
    /// Draw progress bars of packs sent and received on standard error.
    progress: bool,
}

impl Remote {
    pub fn open(cfg: &RemoteConfig) -> Result<Remote> {
        let net = crate::net::NetworkConfig::load()?;
        Ok(Remote {
            url: cfg.url.trim_end_matches('/').to_string(),
            token: cfg.token()?,
            http: crate::net::Client::new(&net, Duration::from_secs(60)),
            progress: false,
        })
    }

    /// Progress bars (bytes, objects, rate) of packs sent and received, on
    /// standard error when it is a terminal; never otherwise.
    pub fn with_progress(mut self, on: bool) -> Remote {
        self.progress = on && std::io::IsTerminal::is_terminal(&std::io::stderr());
        self
    }

    fn bar(&self, what: &str, total: Option<u64>) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let (bar, template) = match total {
            Some(n) => (
                indicatif::ProgressBar::new(n),
                "{prefix} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ),
            None => (
                indicatif::ProgressBar::new_spinner(),
                "{prefix} {msg} {spinner} {bytes} {bytes_per_sec} {elapsed}",
            ),
        };
        let style = indicatif::ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> ");
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.with_style(style).with_prefix(what.to_string())
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.url)
    }

    fn net_err(&self, e: &ureq::Error) -> Error {
        Error::Net {
            url: self.url.clone(),
            message: crate::net::describe(e).0,
        }
    }

    fn fail<T>(&self, message: String) -> Result<T> {
        Err(Error::Net {
            url: self.url.clone(),
            message,
        })
    }

    /// Sends a request, trying again (up to [`TRIES`] in all) after a
    /// transient failure (no answer) or a 503 (after its Retry-After, at most
    /// 30 s); another error status is an error carrying the server's line.
    fn call(&self, path: &str, send: &Sender<'_>) -> Result<Response> {
        let url = self.endpoint(path);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut tries = 0;
        loop {
            tries += 1;
            let backoff = Duration::from_millis(200 * u64::from(tries));
            let mut resp = match send(&url, auth.clone()) {
                Ok(r) => r,
                Err(e) => {
                    let (_, transient) = crate::net::describe(&e);
                    if !transient || tries == TRIES {
                        return Err(self.net_err(&e));
                    }
                    crate::log!(
                        crate::log::Level::Info,
                        "{url}: {}; retrying",
                        crate::net::describe(&e).0
                    );
                    std::thread::sleep(backoff);
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 200 {
                return Ok(resp);
            }
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 << 10)
                .read_to_string()
                .unwrap_or_default();
            if status == 503 && tries < TRIES {
                let wait = resp
                    .headers()
                    .get("Retry-After")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(backoff, Duration::from_secs)
                    .min(MAX_RETRY_AFTER);
                crate::log!(crate::log::Level::Info, "{url}: 503 {}; retrying", text.trim());
                std::thread::sleep(wait);
                continue;
            }
            return Err(Error::Status {
                url: self.url.clone(),
                status,
                message: text.trim().to_string(),
            });
        }
    }

    fn post_text(&self, path: &str, body: &str) -> Result<String> {
        let mut resp = self.call(path, &|url, auth| {
            let mut r = self.http.post(url).map_err(|_| ureq::Error::InvalidProxyUrl)?;
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send(body)
        })?;
        resp.body_mut()
            .with_config()
            .limit(super::server::MAX_SMALL_BODY)
            .read_to_string()
            .map_err(|e| self.net_err(&e))
    }

    /// The server's refs, sorted by name.
    pub fn ls_refs(&self) -> Result<Vec<(String, ObjectId)>> {
        let mut resp = self.call("refs", &|url, auth| {
            let mut r = self.http.get(url).map_err(|_| ureq::Error::InvalidProxyUrl)?;
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| self.net_err(&e))?;
        let mut out = Vec::new();
        for line in text.lines() {
            let parsed = line
                .split_once(' ')
                .and_then(|(id, name)| Some((name.to_string(), ObjectId::from_hex(id)?)));
            match parsed {
                Some(p) if crate::refs::check_name(&p.0).is_ok() => out.push(p),
                _ => return self.fail(format!("the server listed a malformed ref line {line:?}")),
            }
        }
        Ok(out)
    }

    /// Which of `objects` the server lacks, in order.
    pub fn lacks(&self, objects: &[(Kind, ObjectId)]) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(objects.len());
        for chunk in objects.chunks(BATCH) {
            let text = self.post_text("lacks", &id_lines(chunk))?;
            let lacking: std::collections::HashSet<&str> = text.lines().collect();
            out.extend(
                chunk
                    .iter()
                    .map(|(k, id)| lacking.contains(format!("{k} {id}").as_str())),
            );
        }
        Ok(out)
    }

    /// Uploads a pack of `len` bytes holding `objects`; the server's
    /// `OBJECTS NEW`.
    pub fn send_pack(&self, file: &std::fs::File, len: u64, objects: u64) -> Result<(u64, u64)> {
        let bar = self.bar("push", Some(len));
        bar.set_message(format!("{objects} objects"));
        let text = {
            let mut resp = self.call("pack", &|url, auth| {
                let mut f = file.try_clone().map_err(ureq::Error::Io)?;
                f.rewind().map_err(ureq::Error::Io)?;
                bar.reset();
                let mut r = self
                    .http
                    .post(url)
                    .map_err(|_| ureq::Error::InvalidProxyUrl)?
                    .header("Content-Type", "application/x-karapace-pack")
                    .header("Content-Length", len.to_string());
                if let Some(a) = auth {
                    r = r.header("Authorization", a);
                }
                let mut counted = crate::progress::Reader::new(bar.wrap_read(&mut f), Some(len));
                r.send(ureq::SendBody::from_reader(&mut counted))
            })?;
            resp.body_mut().read_to_string().map_err(|e| self.net_err(&e))?
        };
        bar.finish_and_clear();
        let mut it = text.split_whitespace().map(str::parse::<u64>);
        match (it.next(), it.next()) {
            (Some(Ok(a)), Some(Ok(b))) => Ok((a, b)),
            _ => self.fail(format!("unexpected answer to a pack upload: {:?}", text.trim())),
        }
    }

    /// Fetches `objects` into the quarantine; returns the bytes received.
    pub fn fetch(&self, objects: &[(Kind, ObjectId)], q: &mut crate::pack::Quarantine<'_>) -> Result<u64> {
        self.fetch_with(objects, q, &indicatif::ProgressBar::hidden())
    }

    /// [`Remote::fetch`], counting the bytes on `bar`.
    fn fetch_with(
        &self,
        objects: &[(Kind, ObjectId)],
        q: &mut crate::pack::Quarantine<'_>,
        bar: &indicatif::ProgressBar,
    ) -> Result<u64> {
        let mut bytes = 0;
        for chunk in objects.chunks(BATCH) {
            let body = id_lines(chunk);
            let mut resp = self.call("fetch", &|url, auth| {
                let mut r = self.http.post(url).map_err(|_| ureq::Error::InvalidProxyUrl)?;
                if let Some(a) = auth {
                    r = r.header("Authorization", a);
                }
                r.send(body.as_str())
            })?;
            let mut counting = Counting {
                inner: bar.wrap_read(resp.body_mut().with_config().limit(u64::MAX).reader()),
                n: 0,
            };
            let got = q.add_pack(&mut counting)?;
            bytes += counting.n;
            bar.set_message(format!("{} objects", q.stats().objects));
            crate::progress::report(q.stats().objects, None);
            let asked: std::collections::HashSet<_> = chunk.iter().collect();
            if got.len() != chunk.len() || !got.iter().all(|o| asked.contains(o)) {
                return self.fail("the server sent other objects than those asked for".into());
            }
        }
        Ok(bytes)
    }

    /// Moves `name` from `old` to `new` on the server (compare-and-swap).
    pub fn update_ref(&self, name: &str, old: Option<ObjectId>, new: Option<ObjectId>) -> Result<()> {
        let show = |o: Option<ObjectId>| o.map_or("-".to_string(), |i| i.to_hex());
        self.post_text("update-ref", &format!("{name} {} {}\n", show(old), show(new)))?;
        Ok(())
    }
}

struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn id_lines(objects: &[(Kind, ObjectId)]) -> String {
    objects.iter().map(|(k, id)| format!("{k} {id}\n")).collect()
}

/// What a push did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PushReport {
    pub env_id: String,
    /// The ref it set, `refs/envs/NAME/TAG`.
    pub r#ref: String,
    /// The environment object's id.
    pub object: String,
    /// Objects sent (those the server lacked).
    pub objects: u64,
    /// Bytes of pack sent.
    pub bytes: u64,
    /// The ref moved (false: it named this environment already).
    pub updated: bool,
}

/// Pushes environment `rec` to `remote` as `name@tag`: the objects the server
/// lacks, then the ref, compare-and-swapped from what the server had.
pub fn push(
    store: &Store,
    rec: &crate::env::EnvRecord,
    remote: &Remote,
    name: &str,
    tag: &str,
    snapshots: bool,
) -> Result<PushReport> {
    let r#ref = super::tag_ref(name, tag);
    crate::refs::check_name(&r#ref)?;
    let _guard = store.write_guard()?;
    let env = crate::env::env_object(rec, snapshots)?;
    let id = store.write_env_object(&env)?;
    let (objects, bytes, updated) = send(store, remote, (Kind::Env, id), &r#ref)?;
    Ok(PushReport {
        env_id: rec.env_id.clone(),
        r#ref,
        object: id.to_hex(),
        objects,
        bytes,
        updated,
    })
}

/// Sends what the server lacks of everything `root` reaches, then points
/// `ref_name` at it, compare-and-swapped from what the server listed:
/// (objects sent, pack bytes sent, whether the ref moved).
pub fn send(store: &Store, remote: &Remote, root: (Kind, ObjectId), ref_name: &str) -> Result<(u64, u64, bool)> {
    crate::refs::check_name(ref_name)?;
    crate::progress::plan(&["negotiate", "pack", "upload"]);
    crate::progress::phase("negotiate");
    let _guard = store.write_guard()?;
    let old = remote
        .ls_refs()?
        .into_iter()
        .find(|(n, _)| n == ref_name)
        .map(|(_, i)| i);
    let objects = crate::pack::negotiate(
        &[root],
        |batch| remote.lacks(batch),
        |batch| {
            let mut out = Vec::new();
            for (k, i) in batch {
                out.extend(store.children(*k, i)?);
            }
            Ok(out)
        },
    )?;
    let (mut sent, mut bytes) = (0, 0);
    if !objects.is_empty() {
        crate::progress::phase("pack");
        let mut tmp = store.temp_file()?;
        let stats = crate::pack::write_pack(store, &objects, tmp.as_file_mut())?;
        crate::progress::phase("upload");
        let len = tmp
            .as_file_mut()
            .stream_position()
            .map_err(crate::store::Error::store("seek", tmp.path()))?;
        remote.send_pack(tmp.as_file(), len, stats.objects)?;
        (sent, bytes) = (stats.objects, len);
    }
    let updated = old != Some(root.1);
    if updated {
        remote.update_ref(ref_name, old, Some(root.1))?;
    }
    Ok((sent, bytes, updated))
}

/// Fetches what the store lacks of everything `root` reaches, top-down,
/// through a quarantine: (objects new to the store, bytes received).
pub fn fetch(store: &Store, remote: &Remote, root: (Kind, ObjectId)) -> Result<(u64, u64)> {
    crate::progress::plan(&["download", "publish"]);
    crate::progress::phase("download");
    let mut q = crate::pack::Quarantine::new(store)?;
    let mut bytes = 0;
    let bar = remote.bar("pull", None);
    bar.set_message("0 objects");
    let lacking = {
        let q = std::cell::RefCell::new(&mut q);
        crate::pack::negotiate(
            &[root],
            |batch| Ok(batch.iter().map(|(k, i)| !q.borrow().has(*k, i)).collect()),
            |batch| {
                let mut q = q.borrow_mut();
                bytes += remote.fetch_with(batch, &mut q, &bar)?;
                let mut out = Vec::new();
                for (k, i) in batch {
                    out.extend_from_slice(q.children_of(*k, i).unwrap_or_default());
                }
                Ok::<_, Error>(out)
            },
        )?
    };
    let blobs: Vec<_> = lacking.iter().copied().filter(|(k, _)| *k == Kind::Blob).collect();
    bytes += remote.fetch_with(&blobs, &mut q, &bar)?;
    bar.finish_and_clear();
    crate::progress::phase("publish");
    let stats = q.publish()?;
    Ok((stats.objects - stats.present, bytes))
}

/// What a pull did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PullReport {
    pub env_id: String,
    pub name: Option<String>,
    /// Objects fetched (those the store lacked) and the bytes received.
    pub objects: u64,
    pub bytes: u64,
    /// The environment was recorded by this pull (false: it was here already).
    pub recorded: bool,
}

/// Pulls `name@tag` from `remote`: fetches what the store lacks, top-down,
/// into a quarantine, publishes it, and records the environment as remote.
pub fn pull(store: &Store, remote: &Remote, name: &str, tag: &str, local_name: Option<&str>) -> Result<PullReport> {
    let r#ref = super::tag_ref(name, tag);
    let Some((_, id)) = remote.ls_refs()?.into_iter().find(|(n, _)| *n == r#ref) else {
        return Err(Error::Refused(format!(
            "{name}@{tag}: no such tag on the remote (see `karapace ls-remote`)"
        )));
    };
    let (objects, bytes) = fetch(store, remote, (Kind::Env, id))?;
    let env = store.read_env_object(&id)?;
    let mut report = PullReport {
        env_id: env.env_id.clone(),
        name: local_name.map(str::to_string),
        objects,
        bytes,
        recorded: false,
    };
    if let Some(rec) = store.read_env(&env.env_id)? {
        report.name = rec.name;
        return Ok(report);
    }
    crate::env::record_pulled(store, &env, local_name)?;
    report.recorded = true;
    Ok(report)
}
