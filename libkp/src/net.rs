//! The HTTP client every download goes through. Proxies are chosen the way
//! curl chooses them (`http_proxy` in lower case only; `https_proxy`,
//! `all_proxy`, `no_proxy` in either case) unless the `[network]` table of the
//! user's configuration names one; TLS is verified against the system's CA
//! store, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (docs/images.md,
//! "Proxies and certificates").

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// The `[network]` table: how Karapace's HTTP clients reach the network
/// (docs/images.md, "Proxies and certificates").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `proxy`: the proxy for every URL, instead of the proxy environment
    /// variables; `""` means none, whatever the environment says.
    pub proxy: Option<String>,
    /// `no_proxy`: hosts reached directly, in `no_proxy`'s syntax; instead of
    /// the `no_proxy` environment variable.
    pub no_proxy: Option<String>,
}

/// Whether `p` is a proxy URL the client can use; the reason when not (which
/// never repeats the URL: it may carry a password).
pub fn check_proxy(p: &str) -> Result<(), String> {
    ureq::Proxy::new(p)
        .map(drop)
        .map_err(|_| "not a proxy URL ([http|https|socks4|socks5]://[USER:PASSWORD@]HOST[:PORT])".to_string())
}

/// `host:port` of the proxy URL `p`, for messages (without the credentials).
pub fn proxy_host(p: &str) -> String {
    ureq::Proxy::new(p)
        .map(|x| format!("{}:{}", x.host(), x.port()))
        .unwrap_or_default()
}

/// The proxy for `url`, `None` to connect directly.
pub fn proxy_for(url: &str, config: &NetworkConfig) -> Option<String> {
    proxy_in(url, config, &|k| std::env::var(k).ok())
}

/// [`proxy_for`] over the environment `env`.
fn proxy_in(url: &str, config: &NetworkConfig, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let uri = url.parse::<ureq::http::Uri>().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    if no_proxy_in(config, env).is_some_and(|list| no_proxy_matches(&list, host)) {
        return None;
    }
    scheme_proxy_in(&uri.scheme_str()?.to_ascii_lowercase(), config, env)
}

/// The value of `k`, else of `K` (curl's order), empty counting as unset.
fn either(env: &dyn Fn(&str) -> Option<String>, k: &str) -> Option<String> {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    var(k).or_else(|| var(&k.to_ascii_uppercase()))
}

/// The `no_proxy` list: `[network] no_proxy`, else the environment's.
fn no_proxy_in(config: &NetworkConfig, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    match &config.no_proxy {
        Some(list) => Some(list.clone()),
        None => either(env, "no_proxy"),
    }
}

/// The proxy for URLs of `scheme` (lower case), whatever their host.
fn scheme_proxy_in(scheme: &str, config: &NetworkConfig, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(p) = &config.proxy {
        return Some(p.clone()).filter(|p| !p.is_empty());
    }
    // `HTTP_PROXY` is never read: a CGI program gets it from a client's `Proxy:` header.
    let own = match scheme {
        "http" => env("http_proxy").filter(|v| !v.is_empty()),
        other => either(env, &format!("{other}_proxy")),
    };
    own.or_else(|| either(env, "all_proxy"))
}

/// The proxies a package manager inside a build is given: the same choice as
/// for Karapace's own downloads, per scheme, with the `no_proxy` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagerProxy {
    pub http: Option<String>,
    pub https: Option<String>,
    pub no_proxy: Option<String>,
}

impl ManagerProxy {
    pub fn new(config: &NetworkConfig) -> ManagerProxy {
        let env = |k: &str| std::env::var(k).ok();
        // Only what parses as a proxy URL is passed on: it goes into the
        // manager's configuration syntax.
        let usable = |p: Option<String>| p.filter(|p| check_proxy(p).is_ok());
        ManagerProxy {
            http: usable(scheme_proxy_in("http", config, &env)),
            https: usable(scheme_proxy_in("https", config, &env)),
            no_proxy: no_proxy_in(config, &env),
        }
    }

    pub fn is_none(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }
}

/// Whether `host` is on the `no_proxy` list `list`: entries separated by
/// commas or spaces, each a domain (matching itself and its subdomains; a
/// leading dot is ignored), an IP address, a CIDR range, or `*` for all.
fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .any(|entry| {
            let entry = entry.trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
            if entry == "*" || entry == host {
                return true;
            }
            if let (Some(ip), Some((net, bits))) = (ip, entry.split_once('/')) {
                return in_cidr(ip, net, bits);
            }
            ip.is_none() && host.strip_suffix(&entry).is_some_and(|rest| rest.ends_with('.'))
        })
}

fn in_cidr(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let prefix = |a: u128, b: u128, width: u32| bits <= width && (bits == 0 || (a ^ b) >> (width - bits) == 0);
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => prefix(u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => prefix(a.into(), b.into(), 128),
        _ => false,
    }
}

/// The system's CA certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set),
/// read once.
fn roots() -> Arc<Vec<Certificate<'static>>> {
    static ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                crate::log!(crate::log::Level::Info, "CA certificates: {e}");
            }
            Arc::new(
                found
                    .certs
                    .iter()
                    .map(|c| Certificate::from_der(c).to_owned())
                    .collect(),
            )
        })
        .clone()
}

/// The HTTP client: one agent, the proxy chosen per request.
pub struct Client {
    agent: ureq::Agent,
    config: NetworkConfig,
}

impl Client {
    /// A client giving up on a connection after `timeout` without progress.
    pub fn new(config: &NetworkConfig, timeout: Duration) -> Client {
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .root_certs(RootCerts::Specific(roots()))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .user_agent(concat!("karapace/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            agent,
            config: config.clone(),
        }
    }

    /// The proxy `url` goes through, as `host:port`; `None` when direct.
    pub fn via(&self, url: &str) -> Option<String> {
        proxy_for(url, &self.config).map(|p| proxy_host(&p))
    }

    /// A GET of `url` through its proxy.
    pub fn get(&self, url: &str) -> Result<ureq::RequestBuilder<ureq::typestate::WithoutBody>, String> {
        let req = self.agent.get(url);
        Ok(match self.proxy(url)? {
            None => req,
            p => req.config().proxy(p).build(),
        })
    }

    /// A POST to `url` through its proxy.
    pub fn post(&self, url: &str) -> Result<ureq::RequestBuilder<ureq::typestate::WithBody>, String> {
        let req = self.agent.post(url);
        Ok(match self.proxy(url)? {
            None => req,
            p => req.config().proxy(p).build(),
        })
    }

    /// A HEAD of `url` through its proxy.
    pub fn head(&self, url: &str) -> Result<ureq::RequestBuilder<ureq::typestate::WithoutBody>, String> {
        let req = self.agent.head(url);
        Ok(match self.proxy(url)? {
            None => req,
            p => req.config().proxy(p).build(),
        })
    }

    /// A PUT or PATCH (`patch`) to `url` through its proxy.
    pub fn put(&self, url: &str, patch: bool) -> Result<ureq::RequestBuilder<ureq::typestate::WithBody>, String> {
        let req = if patch {
            self.agent.patch(url)
        } else {
            self.agent.put(url)
        };
        Ok(match self.proxy(url)? {
            None => req,
            p => req.config().proxy(p).build(),
        })
    }

    fn proxy(&self, url: &str) -> Result<Option<ureq::Proxy>, String> {
        let Some(p) = proxy_for(url, &self.config) else {
            return Ok(None);
        };
        ureq::Proxy::new(&p).map(Some).map_err(|_| {
            // The URL may carry a password: name only where it came from.
            "the proxy URL (from [network] proxy or the proxy environment variables) is not valid".to_string()
        })
    }
}

/// A failed request in a sentence, and whether trying again may help: an
/// untrusted certificate or a bad URL stays so.
pub fn describe(e: &ureq::Error) -> (String, bool) {
    // rustls reports a handshake failure inside an io::Error.
    let tls = match e {
        ureq::Error::Rustls(t) => Some(t),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match (tls, e) {
        (Some(rustls::Error::InvalidCertificate(why)), _) => (
            format!(
                "TLS: the server's certificate is not trusted ({why:?}); \
                 trusted are the system's CA certificates, or SSL_CERT_FILE / SSL_CERT_DIR when set"
            ),
            false,
        ),
        (Some(t), _) => (format!("TLS: {t}"), false),
        (_, ureq::Error::Tls(t)) => (format!("TLS: {t}"), false),
        (_, ureq::Error::BadUri(_) | ureq::Error::InvalidProxyUrl | ureq::Error::Http(_)) => (e.to_string(), false),
        (_, ureq::Error::Io(io)) => (io.to_string(), true),
        (_, other) => (other.to_string(), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(url: &str, config: &NetworkConfig, env: &[(&str, &str)]) -> Option<String> {
        proxy_in(url, config, &|k| {
            env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn curl_rules() {
        let none = NetworkConfig::default();
        assert_eq!(pick("http://a/x", &none, &[("HTTP_PROXY", "http://p")]), None);
        assert_eq!(
            pick("http://a/x", &none, &[("http_proxy", "http://p")]).as_deref(),
            Some("http://p")
        );
        assert_eq!(pick("https://a/x", &none, &[("http_proxy", "http://p")]), None);
        assert_eq!(
            pick("https://a/x", &none, &[("HTTPS_PROXY", "http://s")]).as_deref(),
            Some("http://s")
        );
        let both = [("https_proxy", "http://low"), ("HTTPS_PROXY", "http://up")];
        assert_eq!(pick("https://a/x", &none, &both).as_deref(), Some("http://low"));
        assert_eq!(
            pick("https://a/x", &none, &[("ALL_PROXY", "socks5://s")]).as_deref(),
            Some("socks5://s")
        );
        let env = [
            ("all_proxy", "http://all"),
            ("NO_PROXY", "example.org, .lan,10.0.0.0/8"),
        ];
        assert_eq!(pick("http://example.org/", &none, &env), None);
        assert_eq!(pick("http://deb.example.org/", &none, &env), None);
        assert_eq!(
            pick("http://notexample.org/", &none, &env).as_deref(),
            Some("http://all")
        );
        assert_eq!(pick("http://box.lan/", &none, &env), None);
        assert_eq!(pick("http://10.1.2.3:80/", &none, &env), None);
        assert_eq!(pick("http://11.1.2.3/", &none, &env).as_deref(), Some("http://all"));
        assert_eq!(
            pick(
                "http://[::1]/",
                &none,
                &[("all_proxy", "http://p"), ("no_proxy", "::1")]
            ),
            None
        );
        assert_eq!(
            pick("http://a/", &none, &[("all_proxy", "http://p"), ("no_proxy", "*")]),
            None
        );
        assert_eq!(pick("http://a/", &none, &[("http_proxy", "")]), None);
    }

    #[test]
    fn the_config_wins() {
        let config = NetworkConfig {
            proxy: Some("http://conf".into()),
            no_proxy: None,
        };
        let env = [("http_proxy", "http://env"), ("no_proxy", "b")];
        assert_eq!(pick("http://a/", &config, &env).as_deref(), Some("http://conf"));
        assert_eq!(pick("http://b/", &config, &env), None);
        let direct = NetworkConfig {
            proxy: Some(String::new()),
            no_proxy: None,
        };
        assert_eq!(pick("http://a/", &direct, &env), None);
        let own_list = NetworkConfig {
            proxy: None,
            no_proxy: Some("a".into()),
        };
        assert_eq!(pick("http://a/", &own_list, &env), None);
        assert_eq!(pick("http://b/", &own_list, &env).as_deref(), Some("http://env"));
    }

    #[test]
    fn proxy_urls() {
        assert!(check_proxy("http://user:pw@proxy:3128").is_ok());
        assert!(check_proxy("proxy:3128").is_ok());
        assert!(check_proxy("ftp://proxy").is_err());
    }
}
