//! karapace-server: protocol v1 (docs/protocol.md) over HTTP. A thin binding
//! of libkp::remote::Service to tiny_http: every decision is the library's.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libkp::remote::server::{Body, Request, Scope, Service, Tokens};

const USAGE: &str = "\
usage: karapace-server [--store DIR] [--listen ADDR:PORT] [--anonymous-read]
                       [--max-pack BYTES] [--threads N]
       karapace-server [--store DIR] token add NAME [--write]
       karapace-server [--store DIR] token remove NAME
       karapace-server [--store DIR] token list

Serves the store DIR (--store, else $KARAPACE_STORE, else the default store)
over protocol v1 (docs/protocol.md). --listen defaults to 127.0.0.1:7420;
port 0 picks a free port. The address listened on is printed on standard
output as its first line. Requests need a bearer token (read, or read and
write with --write); --anonymous-read lets anyone list and fetch. A pack
upload over --max-pack bytes (default 8 GiB) is refused. One line per request
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
    let tokens = Tokens::load(&store)?;
    let service = Arc::new(Service {
        store,
        tokens,
        anonymous_read: o.anonymous_read,
        max_pack: o.max_pack,
    });
    // Before any thread starts, so every worker inherits the blocked mask.
    let interrupts = libkp::care::Interrupts::catch()?;
    let server = match tiny_http::Server::http(o.listen.as_str()) {
        Ok(s) => Arc::new(s),
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
    let workers: Vec<_> = (0..o.threads)
        .map(|_| {
            let (server, service, stop) = (server.clone(), service.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(200)) {
                        serve(&service, req);
                    }
                }
            })
        })
        .collect();
    while !interrupts.pending() {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    eprintln!("karapace-server: stopped");
    Ok(0)
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
        body: req.as_reader(),
    });
    let status = tiny_http::StatusCode(reply.status);
    let (sent, result) = match reply.body {
        Body::Text(t) => {
            let n = t.len() as u64;
            (
                n,
                req.respond(tiny_http::Response::from_string(t).with_status_code(status)),
            )
        }
        Body::File(f, n) => (
            n,
            req.respond(tiny_http::Response::new(status, Vec::new(), f, Some(n as usize), None)),
        ),
    };
    // One line per request; the URL as Rust escapes it, so a control
    // character in it cannot forge a line.
    eprintln!(
        "{peer} {method} {} {} {} {sent} {}ms{}",
        url.escape_debug(),
        reply.status,
        reply.who,
        start.elapsed().as_millis(),
        if result.is_err() { " (client gone)" } else { "" }
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
