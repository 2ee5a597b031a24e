//! The distribution protocol's push side (docs/oci.md, "Pushing an
//! environment"): a blob the repository has is skipped (`HEAD`), one another
//! repository of the registry has is mounted (`POST ...?mount=&from=`), the
//! rest are uploaded whole (`POST`, then one `PUT`) or in chunks (`PATCH`
//! each, then `PUT ?digest=`), and the manifest goes last, under its tag.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::{auth, Registry};
use crate::image::{Error, ImageError, Result};

/// What the registry answered, whole (a registry's answers to pushes are small).
struct Reply {
    status: u16,
    reason: String,
    location: Option<String>,
    /// `WWW-Authenticate`, on a `401`.
    challenge: Option<String>,
    body: String,
}

/// A request's body.
enum Body<'f> {
    None,
    Bytes(&'f [u8]),
    /// `len` bytes of a file from `offset`.
    File(&'f File, u64, u64),
}

/// Where a blob's bytes are: a file and the digest and size they have.
pub struct BlobSource<'f> {
    pub digest: &'f str,
    pub size: u64,
    pub file: &'f File,
}

/// What happened to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The repository had it (the caller's [`Registry::has_blob`]).
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// Largest answer body read (error documents).
const MAX_REPLY: u64 = 1 << 16;

impl Registry<'_> {
    fn api_url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// A `Location` header made absolute (registries may answer with a path).
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            return location.to_string();
        }
        let scheme = if self.plain_http { "http" } else { "https" };
        format!("{scheme}://{}{location}", self.r.api_host())
    }

    fn send_once(&self, method: &str, url: &str, headers: &[(&str, String)], body: &Body<'_>) -> Result<Reply> {
        let client = self.fetcher.client();
        let transport = |reason: String| -> Error {
            ImageError::Transport {
                url: url.to_string(),
                reason,
                attempts: 1,
            }
            .into()
        };
        let mut all = self.auth_header();
        all.extend(headers.iter().cloned());
        let sent = match (method, body) {
            ("HEAD", _) => {
                let mut r = client.head(url).map_err(transport)?;
                for (k, v) in &all {
                    r = r.header(*k, v);
                }
                r.call()
            }
            (m, b) => {
                let mut r = match m {
                    "POST" => client.post(url),
                    "PATCH" => client.put(url, true),
                    _ => client.put(url, false),
                }
                .map_err(transport)?;
                for (k, v) in &all {
                    r = r.header(*k, v);
                }
                match b {
                    Body::None => r.header("Content-Length", "0").send(&[][..]),
                    Body::Bytes(bytes) => r.header("Content-Length", bytes.len().to_string()).send(*bytes),
                    Body::File(f, offset, len) => {
                        let mut f = f.try_clone().map_err(|e| transport(e.to_string()))?;
                        f.seek(SeekFrom::Start(*offset)).map_err(|e| transport(e.to_string()))?;
                        let mut part = f.take(*len);
                        r.header("Content-Length", len.to_string())
                            .send(ureq::SendBody::from_reader(&mut part))
                    }
                }
            }
        };
        let resp = sent.map_err(|e| transport(crate::net::describe(&e).0))?;
        let status = resp.status().as_u16();
        let reason = resp.status().canonical_reason().unwrap_or("").to_string();
        let location = resp
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let challenge = resp
            .headers()
            .get("WWW-Authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut text = String::new();
        if method != "HEAD" {
            let _ = resp.into_body().into_reader().take(MAX_REPLY).read_to_string(&mut text);
        }
        Ok(Reply {
            status,
            reason,
            location,
            challenge,
            body: text,
        })
    }

    /// Sends a request, answering one `401` by its challenge.
    fn send(&self, method: &str, url: &str, headers: &[(&str, String)], body: Body<'_>) -> Result<Reply> {
        let reply = self.send_once(method, url, headers, &body)?;
        if reply.status != 401 {
            return Ok(reply);
        }
        let mut answer = super::super::fetch::Answer {
            status: 401,
            reason: reply.reason.clone(),
            headers: Default::default(),
            body: Vec::new(),
        };
        if let Some(v) = reply.challenge.as_deref().and_then(|c| c.parse().ok()) {
            answer.headers.insert("WWW-Authenticate", v);
        }
        self.authenticate(url, &answer)?;
        let again = self.send_once(method, url, headers, &body)?;
        if again.status == 401 {
            return Err(self.unauthorized(url, &answer, true));
        }
        Ok(again)
    }

    /// The error for an answer other than `want`: the status, and the
    /// registry's error document's first code and message when it has one.
    fn refused(&self, method: &str, url: &str, reply: &Reply) -> Error {
        #[derive(serde::Deserialize)]
        struct Doc {
            errors: Vec<Item>,
        }
        #[derive(serde::Deserialize)]
        struct Item {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        let mut reason = format!("{} ({method})", reply.reason);
        if let Ok(d) = serde_json::from_str::<Doc>(&reply.body) {
            if let Some(i) = d.errors.first() {
                reason = format!("{reason}: {} {}", i.code, i.message).trim_end().to_string();
            }
        }
        ImageError::Http {
            url: url.to_string(),
            status: reply.status,
            reason,
        }
        .into()
    }

    /// Whether the repository has the blob `digest`.
    pub fn has_blob(&self, digest: &str) -> Result<bool> {
        let url = self.blob_url(digest);
        let reply = self.send("HEAD", &url, &[], Body::None)?;
        match reply.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.refused("HEAD", &url, &reply)),
        }
    }

    /// Puts `blob`, which the repository lacks ([`Registry::has_blob`]),
    /// into it: mounted from the first repository of `from` (another
    /// repository of the registry known to have it), else uploaded, in
    /// chunks of `chunk` bytes when it is larger than that (0: whole).
    pub fn push_blob(&self, blob: &BlobSource<'_>, from: &[String], chunk: u64) -> Result<Pushed> {
        let uploads = self.api_url("blobs/uploads/");
        // One mount is tried: when it fails the registry answers with an
        // upload session, which the upload then uses.
        let mut session = None;
        if let Some(repo) = from.iter().find(|r| **r != self.r.repository) {
            let url = format!(
                "{uploads}?mount={}&from={}",
                auth::query_escape(blob.digest),
                auth::query_escape(repo)
            );
            let reply = self.send("POST", &url, &[], Body::None)?;
            match reply.status {
                201 => return Ok(Pushed::Mounted),
                202 => session = reply.location,
                _ => return Err(self.refused("POST", &url, &reply)),
            }
        }
        let mut location = match session {
            Some(l) => l,
            None => {
                let reply = self.send("POST", &uploads, &[], Body::None)?;
                match (reply.status, reply.location.clone()) {
                    (202, Some(l)) => l,
                    _ => return Err(self.refused("POST", &uploads, &reply)),
                }
            }
        };
        let octets = ("Content-Type", "application/octet-stream".to_string());
        let mut offset = 0;
        if chunk > 0 && blob.size > chunk {
            while offset < blob.size {
                let len = chunk.min(blob.size - offset);
                let url = self.absolute(&location);
                let range = ("Content-Range", format!("{offset}-{}", offset + len - 1));
                let reply = self.send(
                    "PATCH",
                    &url,
                    &[octets.clone(), range],
                    Body::File(blob.file, offset, len),
                )?;
                match (reply.status, reply.location.clone()) {
                    (202, Some(l)) => location = l,
                    _ => return Err(self.refused("PATCH", &url, &reply)),
                }
                offset += len;
            }
        }
        let url = self.absolute(&location);
        let url = format!(
            "{url}{}digest={}",
            if url.contains('?') { '&' } else { '?' },
            auth::query_escape(blob.digest)
        );
        let body = if offset < blob.size {
            Body::File(blob.file, offset, blob.size - offset)
        } else {
            Body::None
        };
        let reply = self.send("PUT", &url, &[octets], body)?;
        if reply.status != 201 {
            return Err(self.refused("PUT", &url, &reply));
        }
        Ok(Pushed::Uploaded)
    }

    /// Puts the manifest `bytes` (of `media_type`) under `tag`.
    pub fn put_manifest(&self, tag: &str, bytes: &[u8], media_type: &str) -> Result<()> {
        let url = self.api_url(&format!("manifests/{tag}"));
        let reply = self.send(
            "PUT",
            &url,
            &[("Content-Type", media_type.to_string())],
            Body::Bytes(bytes),
        )?;
        if reply.status != 201 {
            return Err(self.refused("PUT", &url, &reply));
        }
        Ok(())
    }
}
