//! Outbound safety for URLs users give us: a webhook must not become a way to reach the
//! server's own network (loopback, private ranges, link-local and cloud metadata
//! addresses). Checked when a webhook is saved, and again on every connection: the
//! client resolves names through [`GuardedResolver`], which refuses a name that resolves
//! to such an address (so a name that changes its answer after the check gains nothing),
//! and follows redirects only to the same host, through the same resolver.
//! `PROMPTOS_WEBHOOK_ALLOW_PRIVATE=true` lifts the rule (and allows `http://`) for
//! on-premises installs and tests.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Longest URL accepted.
const MAX_URL_CHARS: usize = 2000;
/// Redirects followed (to the same host only).
const MAX_REDIRECTS: usize = 3;

/// Whether an address is one a webhook may not reach: anything but the public internet.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00 // unique local (fc00::/7), e.g. fd00:ec2::254
                    || (first & 0xffc0) == 0xfe80 // link-local
                    || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                    || v6.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
                    || (first == 0x64 && v6.segments()[1] == 0xff9b) // NAT64 of any address
                    || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
            }
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // 169.254.0.0/16, with the metadata address
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks a webhook URL's shape: absolute `https://` (or `http://` where private
/// addresses are allowed), a host, no credentials, and no address a webhook may not
/// reach when the host is an address. Names are checked when they are resolved.
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, Refused> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(Refused(format!("a URL may be at most {MAX_URL_CHARS} characters long")));
    }
    let parsed = Url::parse(url).map_err(|e| Refused(format!("{url:?} is not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err(Refused("use https:// (plain http:// only where PROMPTOS_WEBHOOK_ALLOW_PRIVATE=true)".into()))
        }
        other => return Err(Refused(format!("{other}:// URLs are not supported; use https://"))),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Refused("put no credentials in the URL; receivers verify the signature instead".into()));
    }
    let ip = match parsed.host() {
        None => return Err(Refused(format!("{url:?} has no host"))),
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !allow_private && (d == "localhost" || d.ends_with(".localhost")) {
                return Err(refusal(&d));
            }
            None
        }
    };
    match ip {
        Some(ip) if !allow_private && forbidden(ip) => Err(refusal(&ip.to_string())),
        _ => Ok(parsed),
    }
}

fn refusal(what: &str) -> Refused {
    Refused(format!(
        "{what} is a loopback, private, link-local or metadata address; webhooks go to public addresses \
         (PROMPTOS_WEBHOOK_ALLOW_PRIVATE=true allows them on premises)"
    ))
}

/// Resolves names like the system does, and refuses those that lead to an address a
/// webhook may not reach.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private {
                if let Some(bad) = addrs.iter().find(|a| forbidden(a.ip())) {
                    return Err(Box::new(refusal(&format!("{host} resolves to {}, which", bad.ip())))
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client webhooks are delivered with: the guarded resolver, a timeout,
/// redirects only to the same host, and no proxy from the environment (a proxy would
/// resolve names where the guard cannot see).
pub fn client(allow_private: bool, timeout: Duration) -> reqwest::Client {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().and_then(|u| u.host_str().map(str::to_owned));
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")))
        } else if first.as_deref() != attempt.url().host_str() {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(policy)
        .no_proxy()
        .timeout(timeout)
        .user_agent(concat!("PromptOS-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook client builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_forbidden() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(forbidden(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!forbidden(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn urls_must_be_https_to_public_hosts_unless_private_is_allowed() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]:8443/",
            "https://localhost/x",
            "https://user:pw@hooks.example.com/",
            "ftp://hooks.example.com/",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_forbidden_addresses_are_refused_when_connecting() {
        let strict = client(false, Duration::from_secs(5));
        let err = strict.get("http://localhost:9/").send().await.unwrap_err();
        assert!(format!("{err:?}").contains("loopback"), "{err:?}");
    }
}
