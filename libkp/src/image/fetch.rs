//! HTTP(S) downloads: streaming, retried on transient failures, verified against
//! a sha256 when one is known, with a progress bar when stderr is a terminal.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, Write};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Config, ImageError};
use super::{Error, Result};
use crate::hash::hex;

/// The host's architecture as image servers name it (Debian's names).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "x86" => "i386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64el",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// JSON indexes are small; anything far larger is not one.
const MAX_INDEX: u64 = 256 << 20;

/// What a download turned out to be.
#[derive(Clone, Debug, Default)]
pub struct Downloaded {
    pub sha256: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Validators from an earlier download, for a conditional request.
#[derive(Clone, Debug, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

pub struct Fetcher {
    client: crate::net::Client,
    retries: u32,
    progress: bool,
    /// Bars of parallel downloads are drawn together.
    bars: Option<indicatif::MultiProgress>,
}

/// A whole answer of any status ([`Fetcher::answer`]).
pub struct Answer {
    pub status: u16,
    pub reason: String,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

enum Attempt<T> {
    Done(T),
    /// Worth another try (connection trouble, 5xx, 429, a body cut short).
    Retry(String),
}

impl Fetcher {
    pub fn new(config: &Config, progress: bool) -> Fetcher {
        Fetcher {
            client: crate::net::Client::new(&config.network, Duration::from_secs(config.timeout_secs)),
            retries: config.retries,
            progress: progress && io::stderr().is_terminal(),
            bars: None,
        }
    }

    /// The HTTP client, for requests other than downloads (a registry push).
    pub(crate) fn client(&self) -> &crate::net::Client {
        &self.client
    }

    /// Draws the bars of downloads running at once one under the other.
    pub fn multi_progress(mut self) -> Fetcher {
        if self.progress {
            let bars = indicatif::MultiProgress::new();
            bars.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            self.bars = Some(bars);
        }
        self
    }

    /// Runs `f` until it succeeds, fails for good, or the retries are spent.
    fn retrying<T>(&self, url: &str, mut f: impl FnMut() -> Result<Attempt<T>>) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match f()? {
                Attempt::Done(t) => return Ok(t),
                Attempt::Retry(reason) if attempt > self.retries => {
                    return Err(ImageError::Transport {
                        url: url.to_string(),
                        reason,
                        attempts: attempt,
                    }
                    .into())
                }
                Attempt::Retry(reason) => {
                    crate::log!(crate::log::Level::Info, "{url}: {reason}; retrying");
                    std::thread::sleep(Duration::from_millis(250 << (attempt - 1).min(5)));
                }
            }
        }
    }

    /// Sends a GET; `Ok(None)` means 304 Not Modified.
    fn get(
        &self,
        url: &str,
        since: &Validators,
        headers: &[(&str, String)],
    ) -> Result<Attempt<Option<ureq::http::Response<ureq::Body>>>> {
        let refused = |reason: String| -> Error {
            ImageError::Transport {
                url: url.to_string(),
                reason,
                attempts: 1,
            }
            .into()
        };
        let mut req = self.client.get(url).map_err(refused)?;
        if let Some(e) = &since.etag {
            req = req.header("If-None-Match", e);
        }
        if let Some(m) = &since.last_modified {
            req = req.header("If-Modified-Since", m);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = match req.call() {
            Ok(r) => r,
            Err(e) => {
                let (mut why, again) = crate::net::describe(&e);
                if let Some(proxy) = self.client.via(url) {
                    why = format!("{why} (through the proxy {proxy})");
                }
                return if again {
                    Ok(Attempt::Retry(why))
                } else {
                    Err(refused(why))
                };
            }
        };
        let status = r.status().as_u16();
        let reason = r.status().canonical_reason().unwrap_or("").to_string();
        match status {
            // 304 answers only a conditional request; to any other it is nonsense.
            304 if since.etag.is_some() || since.last_modified.is_some() => Ok(Attempt::Done(None)),
            200 => {
                let ctype = header(&r, "Content-Type").unwrap_or_default();
                let mime = ctype.split(';').next().unwrap_or("").trim();
                if mime.eq_ignore_ascii_case("text/html") {
                    return Err(ImageError::HtmlAnswer { url: url.to_string() }.into());
                }
                Ok(Attempt::Done(Some(r)))
            }
            408 | 429 | 500 | 502 | 503 | 504 => Ok(Attempt::Retry(format!("HTTP {status} {reason}"))),
            _ if status < 400 => Err(ImageError::Http {
                url: url.to_string(),
                status,
                reason: format!("{reason} (expected 200)"),
            }
            .into()),
            _ => Err(ImageError::Http {
                url: url.to_string(),
                status,
                reason,
            }
            .into()),
        }
    }

    /// A small answer, whatever its status (connection failures, 408, 429
    /// and 5xx are retried like any request): for protocols that speak in
    /// statuses and headers, such as a registry's `401` with its challenge.
    pub fn answer(&self, url: &str, headers: &[(&str, String)]) -> Result<Answer> {
        self.retrying(url, || {
            let mut req = self.client.get(url).map_err(|reason| -> Error {
                ImageError::Transport {
                    url: url.to_string(),
                    reason,
                    attempts: 1,
                }
                .into()
            })?;
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let r = match req.call() {
                Ok(r) => r,
                Err(e) => {
                    let (mut why, again) = crate::net::describe(&e);
                    if let Some(proxy) = self.client.via(url) {
                        why = format!("{why} (through the proxy {proxy})");
                    }
                    if again {
                        return Ok(Attempt::Retry(why));
                    }
                    return Err(ImageError::Transport {
                        url: url.to_string(),
                        reason: why,
                        attempts: 1,
                    }
                    .into());
                }
            };
            let status = r.status().as_u16();
            if matches!(status, 408 | 429 | 500 | 502 | 503 | 504) {
                let reason = r.status().canonical_reason().unwrap_or("");
                return Ok(Attempt::Retry(format!("HTTP {status} {reason}")));
            }
            let reason = r.status().canonical_reason().unwrap_or("").to_string();
            let (parts, body) = r.into_parts();
            let mut bytes = Vec::new();
            match body.into_reader().take(MAX_INDEX + 1).read_to_end(&mut bytes) {
                Ok(_) if bytes.len() as u64 > MAX_INDEX => Err(ImageError::Index {
                    url: url.to_string(),
                    reason: format!("larger than {MAX_INDEX} bytes"),
                }
                .into()),
                Ok(_) => Ok(Attempt::Done(Answer {
                    status,
                    reason,
                    headers: parts.headers,
                    body: bytes,
                })),
                Err(e) => Ok(Attempt::Retry(format!("reading the answer: {e}"))),
            }
        })
    }

    /// A small document (a JSON index), whole.
    pub fn get_bytes(&self, url: &str) -> Result<Vec<u8>> {
        self.get_bytes_with(url, &[])
    }

    /// [`Fetcher::get_bytes`] with request headers.
    pub fn get_bytes_with(&self, url: &str, headers: &[(&str, String)]) -> Result<Vec<u8>> {
        self.retrying(url, || {
            let r = match self.get(url, &Validators::default(), headers)? {
                Attempt::Done(Some(r)) => r,
                Attempt::Done(None) => unreachable!("304 only answers a conditional request"),
                Attempt::Retry(why) => return Ok(Attempt::Retry(why)),
            };
            let mut body = Vec::new();
            match r.into_body().into_reader().take(MAX_INDEX + 1).read_to_end(&mut body) {
                Ok(_) if body.len() as u64 > MAX_INDEX => Err(ImageError::Index {
                    url: url.to_string(),
                    reason: format!("larger than {MAX_INDEX} bytes"),
                }
                .into()),
                Ok(_) => Ok(Attempt::Done(body)),
                Err(e) => Ok(Attempt::Retry(format!("reading the answer: {e}"))),
            }
        })
    }

    /// Downloads `url` into `out` (rewound and truncated on each attempt) and
    /// checks it against `expected` (lowercase hex). `Ok(None)`: not modified
    /// since `since`.
    pub fn download(
        &self,
        url: &str,
        out: &mut File,
        expected: Option<&str>,
        since: &Validators,
    ) -> Result<Option<Downloaded>> {
        self.download_with(url, out, expected, since, &[])
    }

    /// [`Fetcher::download`] with request headers.
    pub fn download_with(
        &self,
        url: &str,
        out: &mut File,
        expected: Option<&str>,
        since: &Validators,
        headers: &[(&str, String)],
    ) -> Result<Option<Downloaded>> {
        let got = self.retrying(url, || {
            let r = match self.get(url, since, headers)? {
                Attempt::Done(Some(r)) => r,
                Attempt::Done(None) => return Ok(Attempt::Done(None)),
                Attempt::Retry(why) => return Ok(Attempt::Retry(why)),
            };
            let length = header(&r, "Content-Length").and_then(|v| v.parse::<u64>().ok());
            let etag = header(&r, "ETag");
            let last_modified = header(&r, "Last-Modified");
            out.set_len(0)
                .and_then(|_| out.rewind())
                .map_err(Error::store("truncate", std::path::Path::new("<download>")))?;
            let bar = self.bar(url, length);
            let mut hasher = Sha256::new();
            let mut reader = r.into_body().into_reader();
            let mut buf = vec![0u8; 256 << 10];
            let mut size = 0u64;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        bar.abandon();
                        return Ok(Attempt::Retry(format!("download cut short after {size} bytes: {e}")));
                    }
                };
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(Error::store("write", std::path::Path::new("<download>")))?;
                size += n as u64;
                bar.set_position(size);
                crate::progress::report(size, length);
            }
            bar.finish_and_clear();
            if length.is_some_and(|l| l != size) {
                return Ok(Attempt::Retry(format!("got {size} of {} bytes", length.unwrap_or(0))));
            }
            let sha256 = hex(&hasher.finalize());
            Ok(Attempt::Done(Some(Downloaded {
                sha256,
                size,
                etag,
                last_modified,
            })))
        })?;
        if let (Some(d), Some(want)) = (&got, expected) {
            if d.sha256 != want {
                return Err(ImageError::ChecksumMismatch {
                    source_name: url.to_string(),
                    expected: want.to_string(),
                    actual: d.sha256.clone(),
                }
                .into());
            }
        }
        out.rewind()
            .map_err(Error::store("rewind", std::path::Path::new("<download>")))?;
        Ok(got)
    }

    fn bar(&self, url: &str, length: Option<u64>) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let name = url.rsplit('/').next().unwrap_or(url).to_string();
        let style =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .expect("valid template")
                .progress_chars("=> ");
        let bar = match length {
            Some(l) => indicatif::ProgressBar::new(l).with_style(style),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let bar = match &self.bars {
            Some(bars) => bars.add(bar),
            None => {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar
            }
        };
        bar.with_message(name)
    }
}

/// The header `name` of `r`, when present and text.
fn header(r: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The sha256 of a local file, streamed.
pub fn sha256_file(file: &mut File, path: &std::path::Path) -> Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let n = io::copy(file, &mut hasher).map_err(Error::input("read", path))?;
    file.rewind().map_err(Error::input("rewind", path))?;
    Ok((hex(&hasher.finalize()), n))
}
