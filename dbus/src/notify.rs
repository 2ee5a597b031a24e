//! The optional desktop notification when a job ends (`--notify`): sent only
//! when a notification daemon owns its name, so nothing is activated, with
//! no reply awaited (a stuck daemon cannot hold the job), and every failure
//! is ignored.

use std::collections::HashMap;

use zbus::message::{Flags, Message};
use zbus::names::BusName;
use zbus::zvariant::Value;
use zbus::Connection;

const NAME: &str = "org.freedesktop.Notifications";

pub async fn job_finished(conn: &Connection, kind: &str, target: &str, status: &str, error: &str) {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(conn).await else {
        return;
    };
    let Ok(name) = BusName::try_from(NAME) else { return };
    if !dbus.name_has_owner(name).await.unwrap_or(false) {
        return;
    }
    let summary = format!("karapace {kind} {status}");
    let body = if error.is_empty() {
        target.to_string()
    } else {
        format!("{target}: {error}")
    };
    let hints: HashMap<&str, Value<'_>> = HashMap::new();
    let msg = Message::method_call("/org/freedesktop/Notifications", "Notify")
        .and_then(|m| m.destination(NAME))
        .and_then(|m| m.interface(NAME))
        .and_then(|m| m.with_flags(Flags::NoReplyExpected))
        .and_then(|m| {
            m.build(&(
                "Karapace",
                0u32,
                "",
                summary.as_str(),
                body.as_str(),
                Vec::<&str>::new(),
                hints,
                -1i32,
            ))
        });
    if let Ok(msg) = msg {
        let _ = conn.send(&msg).await;
    }
}
