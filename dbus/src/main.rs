//! karapace-dbus: the org.karapace.Manager1 session service (docs/dbus.md).

mod child;
mod error;
mod job;
mod manager;
mod notify;
mod service;
mod types;
mod watch;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::manager::Manager;
use crate::service::Service;

const NAME: &str = "org.karapace.Manager1";
const PATH: &str = "/org/karapace/Manager1";

const USAGE: &str = "\
usage: karapace-dbus [--store PATH] [--idle-timeout SECONDS] [--notify]

Serves org.karapace.Manager1 on the session bus (docs/dbus.md); the bus
starts it on the first call. It exits after --idle-timeout seconds (default
30; 0: never) with no call and no job running.

  --store PATH           the store (default: $KARAPACE_STORE, else the default location)
  --idle-timeout SECONDS exit when idle this long
  --notify               a desktop notification when a job finishes

Exit status: 0 exited when idle or when the bus went away; 1 no session bus, or the name is already
owned there; 3 the store location cannot be found; 64 usage.
";

struct Args {
    store: Option<PathBuf>,
    idle: Duration,
    notify: bool,
}

fn parse() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        store: None,
        idle: Duration::from_secs(30),
        notify: false,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => a.store = Some(p.value()?.into()),
            Long("idle-timeout") => {
                let s: f64 = p.value()?.parse()?;
                if !(s.is_finite() && s >= 0.0) {
                    return Err(format!("--idle-timeout {s}: expected seconds, 0 or more").into());
                }
                a.idle = Duration::from_secs_f64(s);
            }
            Long("notify") => a.notify = true,
            Long("help") | Short('h') => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("karapace-dbus: {e}");
            eprint!("{USAGE}");
            std::process::exit(libkp::exit::USAGE);
        }
    };
    let root = match libkp::store::locate(args.store.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("karapace-dbus: {e}");
            std::process::exit(libkp::exit::STORE);
        }
    };
    let svc = Arc::new(Service::new(root.clone(), args.notify));
    let manager = Manager { svc: svc.clone() };
    let conn = zbus::block_on(async {
        let conn = zbus::connection::Builder::session()?
            .serve_at(PATH, manager)?
            .build()
            .await?;
        // Not Builder::name: it queues behind an owner instead of failing.
        conn.request_name_with_flags(NAME, zbus::fdo::RequestNameFlags::DoNotQueue.into())
            .await?;
        Ok::<_, zbus::Error>(conn)
    });
    let conn = match conn {
        Ok(c) => c,
        Err(zbus::Error::NameTaken) => {
            eprintln!("karapace-dbus: {NAME} is already owned on the session bus (another karapace-dbus runs)");
            std::process::exit(libkp::exit::FAILURE);
        }
        Err(e) => {
            eprintln!("karapace-dbus: cannot connect to the session bus: {e}");
            std::process::exit(libkp::exit::FAILURE);
        }
    };
    if let Err(e) = watch::spawn(conn.clone(), root) {
        // The service still answers; only EnvironmentsChanged is missing.
        eprintln!("karapace-dbus: warning: cannot watch the store (no EnvironmentsChanged): {e}");
    }
    // Without its bus (the session ended) the service has no one to serve.
    let stream = zbus::MessageStream::from(&conn);
    std::thread::spawn(move || {
        let mut stream = stream;
        zbus::block_on(async {
            use futures_core::Stream;
            let mut s = std::pin::Pin::new(&mut stream);
            while std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await.is_some() {}
        });
        std::process::exit(libkp::exit::OK);
    });
    idle_exit(&svc, args.idle);
    // Give the name up before leaving, so the bus starts a new service for
    // the next call instead of sending it here.
    let _ = zbus::block_on(conn.release_name(NAME));
    std::process::exit(libkp::exit::OK);
}

/// Returns once the service has had no call and no job for IDLE.
fn idle_exit(svc: &Service, idle: Duration) {
    if idle.is_zero() {
        loop {
            std::thread::park();
        }
    }
    loop {
        let since = svc.idle_since().elapsed();
        if since >= idle && svc.jobs.load(Ordering::SeqCst) == 0 {
            return;
        }
        std::thread::sleep(idle.saturating_sub(since).max(Duration::from_millis(100)));
    }
}
