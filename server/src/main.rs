//! karapace-server: protocol v1 (docs/protocol.md) over HTTP. A thin binding
//! of libkp::remote::Service to tiny_http: every decision is the library's.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use libkp::remote::server::{Body, Pace, Paced, Request, Scope, Service, Tokens};

const USAGE: &str = "\
usage: karapace-server [--store DIR] [--listen ADDR:PORT] [--anonymous-read]
                       [--max-pack BYTES] [--threads N] [--max-requests N]
                       [--timeout SECS] [--min-rate BYTES]
       karapace-server [--store DIR] token add NAME [--write]
       karapace-server [--store DIR] token remove NAME
       karapace-server [--store DIR] token list

Serves the store DIR (--store, else $KARAPACE_STORE, else the default store)
over protocol v1 (docs/protocol.md). --listen defaults to 127.0.0.1:7420;
port 0 picks a free port. The address listened on is printed on standard
output as its first line. Requests need a bearer token (read, or read and
write with --write); --anonymous-read lets anyone list and fetch. A pack
upload over --max-pack bytes (default 8 GiB) is refused. --threads workers
(default 8) serve at most --max-requests requests at once (default 64, the
rest wait for a worker); one more is answered 503 with Retry-After. No read
or write on a connection waits more than --timeout seconds (default 30), and
a body must move at --min-rate bytes a second (default 16384) once its first
--timeout seconds are over: a slower one ends with 408, as does a request
head that takes longer than --timeout seconds to arrive. One line per request
goes to standard error. SIGTERM or SIGINT: requests in flight finish, then it
exits.

`token add` prints the new token once; only its hash is stored.

Exit status: 0 stopped by a signal, or a token command done; 1 failure; 3
the store cannot be opened; 64 usage.
";

struct Opts {
    store: Option<std::path::PathBuf>,
    listen: String,
    anonymous_read: bool,
    max_pack: u64,
    threads: usize,
    max_requests: usize,
    timeout: u64,
    min_rate: u64,
    token: Vec<String>,
    write: bool,
}

fn parse() -> Result<Opts, String> {
    use lexopt::Arg::*;
    let mut o = Opts {
        store: None,
        listen: "127.0.0.1:7420".into(),
        anonymous_read: false,
        max_pack: 8 << 30,
        threads: 8,
        max_requests: 64,
        timeout: 30,
        min_rate: 16 << 10,
        token: Vec::new(),
        write: false,
    };
    let mut p = lexopt::Parser::from_env();
    let num = |v: std::ffi::OsString, what: &str| -> Result<u64, String> {
        v.to_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{what} wants a number, not {v:?}"))
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("store") => o.store = Some(p.value().map_err(|e| e.to_string())?.into()),
            Long("listen") => o.listen = p.value().map_err(|e| e.to_string())?.to_string_lossy().into_owned(),
            Long("anonymous-read") => o.anonymous_read = true,
            Long("max-pack") => o.max_pack = num(p.value().map_err(|e| e.to_string())?, "--max-pack")?,
            Long("threads") => {
                o.threads = num(p.value().map_err(|e| e.to_string())?, "--threads")?.clamp(1, 256) as usize
            }
            Long("max-requests") => {
                o.max_requests = num(p.value().map_err(|e| e.to_string())?, "--max-requests")?.clamp(1, 65536) as usize
            }
            Long("timeout") => o.timeout = num(p.value().map_err(|e| e.to_string())?, "--timeout")?.clamp(1, 86400),
            Long("min-rate") => o.min_rate = num(p.value().map_err(|e| e.to_string())?, "--min-rate")?.max(1),
            Long("write") => o.write = true,
            Short('h') | Long("help") => {
                print!("{USAGE}");
                std::process::exit(0)
            }
            Value(v) => o
                .token
                .push(v.into_string().map_err(|v| format!("{v:?} is not UTF-8"))?),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("karapace-server: {e}");
            eprint!("{USAGE}");
            std::process::exit(64)
        }
    };
    let code = match run(o) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("karapace-server: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code)
}

fn run(o: Opts) -> Result<i32, libkp::Error> {
    let store = libkp::Store::open(&libkp::store::locate(o.store.as_deref())?)?;
    if !o.token.is_empty() {
        return token(&store, &o);
    }
    // A server killed mid-receive left its quarantine in tmp/.
    store.sweep_if_idle(None)?;
    let tokens = Tokens::load(&store)?;
    let pace = Pace {
        timeout: Duration::from_secs(o.timeout),
        min_rate: o.min_rate,
    };
    let service = Arc::new(Service {
        store,
        tokens,
        anonymous_read: o.anonymous_read,
        max_pack: o.max_pack,
        pace,
        ref_updates: Mutex::new(()),
    });
    // Before any thread starts, so every worker inherits the blocked mask.
    let interrupts = libkp::care::Interrupts::catch()?;
    let server = match listen(&o.listen, pace.timeout) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("karapace-server: cannot listen on {}: {e}", o.listen);
            return Ok(1);
        }
    };
    match server.server_addr().to_ip() {
        Some(addr) => println!("{addr}"),
        None => println!("{}", o.listen),
    }
    let _ = std::io::stdout().flush();
    let stop = Arc::new(AtomicBool::new(false));
    // Requests taken from the connections and not yet answered: those being
    // served and those waiting for a worker.
    let busy = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<tiny_http::Request>();
    let rx = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = (0..o.threads)
        .map(|_| {
            let (rx, service, busy) = (rx.clone(), service.clone(), busy.clone());
            std::thread::spawn(move || loop {
                let next = rx.lock().map(|rx| rx.recv_timeout(Duration::from_millis(200)));
                match next {
                    Ok(Ok(req)) => {
                        serve(&service, req);
                        busy.fetch_sub(1, Ordering::AcqRel);
                    }
                    Ok(Err(mpsc::RecvTimeoutError::Timeout)) => {}
                    _ => break,
                }
            })
        })
        .collect();
    let dispatcher = {
        let (server, stop, busy, max) = (server.clone(), stop.clone(), busy.clone(), o.max_requests);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(200)) else {
                    continue;
                };
                if busy.load(Ordering::Acquire) >= max {
                    refuse_busy(req, max);
                    continue;
                }
                busy.fetch_add(1, Ordering::AcqRel);
                if tx.send(req).is_err() {
                    break;
                }
            }
            // Dropping `tx` lets the workers end once the queue is empty.
        })
    };
    while !interrupts.pending() {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = dispatcher.join();
    for w in workers {
        let _ = w.join();
    }
    eprintln!("karapace-server: stopped");
    Ok(0)
}

/// A server on `addr` whose every connection has `timeout` as its read and
/// write timeout: set on the listening socket, which accepted sockets
/// inherit (tiny_http reaches no socket of its own).
fn listen(addr: &str, timeout: Duration) -> Result<Arc<tiny_http::Server>, String> {
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    let listener = std::net::TcpListener::bind(addr).map_err(|e| e.to_string())?;
    for which in [Timeout::Recv, Timeout::Send] {
        set_socket_timeout(&listener, which, Some(timeout)).map_err(|e| format!("setting a socket timeout: {e}"))?;
    }
    tiny_http::Server::from_listener(listener, None)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// The answer to a request over `--max-requests`: 503 with Retry-After.
fn refuse_busy(req: tiny_http::Request, max: usize) {
    let start = Instant::now();
    let (method, url) = (req.method().as_str().to_string(), req.url().to_string());
    let peer = req.remote_addr().map_or("-".to_string(), |a| a.to_string());
    let text = format!("busy: {max} requests in progress; retry after 1 s\n");
    let n = text.len();
    let result = req.respond(
        tiny_http::Response::from_string(text)
            .with_status_code(503)
            .with_header(retry_after()),
    );
    log(&peer, &method, &url, 503, "-", n as u64, start, result.is_err());
}

fn retry_after() -> tiny_http::Header {
    tiny_http::Header::from_bytes(&b"Retry-After"[..], &b"1"[..]).expect("a valid header")
}

fn serve(service: &Service, mut req: tiny_http::Request) {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let url = req.url().to_string();
    let peer = req.remote_addr().map_or("-".to_string(), |a| a.to_string());
    let auth = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string());
    let length = req.body_length().map(|n| n as u64);
    let reply = service.handle(Request {
        method: &method,
        url: &url,
        authorization: auth.as_deref(),
        length,
        body: &mut LazyBody(&mut req),
    });
    let status = tiny_http::StatusCode(reply.status);
    let (sent, result) = match reply.body {
        Body::Text(t) => {
            let n = t.len() as u64;
            let mut r = tiny_http::Response::from_string(t).with_status_code(status);
            if reply.status == 503 {
                r.add_header(retry_after());
            }
            (n, req.respond(r))
        }
        // An answer is held to the same pace as a request.
        Body::File(f, n) => (
            n,
            req.respond(tiny_http::Response::new(
                status,
                Vec::new(),
                Paced::new(f, service.pace),
                Some(n as usize),
                None,
            )),
        ),
    };
    log(
        &peer,
        &method,
        &url,
        reply.status,
        &reply.who,
        sent,
        start,
        result.is_err(),
    );
}

/// A request's body, asked of tiny_http at the first read: a client that
/// sent `Expect: 100-continue` gets its `100 Continue` only then, so one
/// refused before (401, 403, 413 by its length) never sends the body.
struct LazyBody<'a>(&'a mut tiny_http::Request);

impl std::io::Read for LazyBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.as_reader().read(buf)
    }
}

/// One line per request; the URL as Rust escapes it, so a control character
/// in it cannot forge a line.
#[allow(clippy::too_many_arguments)]
fn log(peer: &str, method: &str, url: &str, status: u16, who: &str, sent: u64, start: Instant, gone: bool) {
    eprintln!(
        "{peer} {method} {} {status} {who} {sent} {}ms{}",
        url.escape_debug(),
        start.elapsed().as_millis(),
        if gone { " (client gone)" } else { "" }
    );
}

fn token(store: &libkp::Store, o: &Opts) -> Result<i32, libkp::Error> {
    let usage = |m: &str| {
        eprintln!("karapace-server: {m}");
        eprint!("{USAGE}");
        Ok(64)
    };
    match o.token.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["token", "add", name] => {
            let scope = if o.write { Scope::Write } else { Scope::Read };
            println!("{}", Tokens::add(store, name, scope)?);
            Ok(0)
        }
        ["token", "remove", name] => {
            if Tokens::remove(store, name)? {
                Ok(0)
            } else {
                eprintln!("karapace-server: no token named {name:?}");
                Ok(1)
            }
        }
        ["token", "list"] => {
            for (name, scope) in Tokens::load(store)?.list() {
                println!("{name} {}", if scope == Scope::Write { "write" } else { "read" });
            }
            Ok(0)
        }
        _ => usage("expected `token add NAME [--write]`, `token remove NAME` or `token list`"),
    }
}
