//! Server URLs: parsed enough to add credentials, to tell whether two URLs reach the same
//! server (for the isolation lint), and to print them without their password.

use crate::secret::Secret;
use std::fmt;

/// A server URL, `scheme://[user[:password]@]host[:port][,host[:port]…][/path][?query]`, with
/// its credentials held apart.
///
/// `Display` and `Debug` show `***` for the password; [`ServerUrl::expose`] gives the full
/// URL for the client that connects.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl {
    scheme: String,
    username: Option<String>,
    password: Option<Secret>,
    hosts: Vec<(String, Option<u16>)>,
    /// `/path?query` as written (may be empty).
    tail: String,
}

impl ServerUrl {
    /// Parses `text`, whose scheme must be one of `schemes`. The error never contains a
    /// password, and says what a valid URL looks like (`example`).
    pub(crate) fn parse(text: &str, schemes: &[&str], example: &str) -> Result<Self, String> {
        let shown = redact_raw(text);
        let Some((scheme, rest)) = text.trim().split_once("://") else {
            return Err(format!(
                "\"{shown}\" is not a URL; write it like \"{example}\""
            ));
        };
        let scheme = scheme.to_ascii_lowercase();
        if !schemes.contains(&scheme.as_str()) {
            return Err(format!(
                "\"{shown}\" has scheme `{scheme}`, expected {}; write it like \"{example}\"",
                schemes
                    .iter()
                    .map(|s| format!("`{s}://`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        // The authority ends at the first `/` or `?` after the credentials.
        let after_at = rest.rfind('@').map_or(0, |i| i + 1);
        let end = rest[after_at..]
            .find(['/', '?', '#'])
            .map_or(rest.len(), |i| after_at + i);
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hostlist) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (u, None),
                };
                (
                    Some(percent_decode(user)).filter(|u| !u.is_empty()),
                    pass.map(|p| Secret::literal(percent_decode(p))),
                )
            }
        };
        let mut hosts = Vec::new();
        for host in hostlist.split(',') {
            hosts.push(parse_host(host).map_err(|why| {
                format!("\"{shown}\" has a bad host `{host}`: {why}; write it like \"{example}\"")
            })?);
        }
        Ok(ServerUrl {
            scheme,
            username,
            password,
            hosts,
            tail: tail.to_owned(),
        })
    }

    /// The full URL, credentials included (percent-encoded), for the client that connects.
    /// Never log it.
    pub fn expose(&self) -> String {
        self.render(false)
    }

    /// The URL with the password shown as `***`, for logs and messages.
    pub fn redacted(&self) -> String {
        self.render(true)
    }

    fn render(&self, redact: bool) -> String {
        let mut s = format!("{}://", self.scheme);
        if self.username.is_some() || self.password.is_some() {
            if let Some(u) = &self.username {
                s.push_str(&percent_encode(u));
            }
            if let Some(p) = &self.password {
                s.push(':');
                s.push_str(&if redact {
                    "***".to_owned()
                } else {
                    percent_encode(p.expose())
                });
            }
            s.push('@');
        }
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|(h, p)| match p {
                Some(p) => format!("{h}:{p}"),
                None => h.clone(),
            })
            .collect();
        s.push_str(&hosts.join(","));
        s.push_str(&self.tail);
        s
    }

    /// The scheme, lower-cased (`mysql`, `redis`, …).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The user name, if any.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The password, if any.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// `host:port` pairs as written (port `None` when the URL gives none).
    pub fn hosts(&self) -> &[(String, Option<u16>)] {
        &self.hosts
    }

    /// The path without its leading `/` and without the query (a PostgreSQL database, a
    /// MySQL default schema); empty when there is none.
    pub fn path(&self) -> &str {
        let t = self.tail.strip_prefix('/').unwrap_or("");
        t.split(['?', '#']).next().unwrap_or("")
    }

    /// Adds credentials given apart from the URL. Giving the same one twice is an error (the
    /// message never shows a password).
    pub(crate) fn with_credentials(
        mut self,
        username: Option<String>,
        password: Option<Secret>,
    ) -> Result<Self, String> {
        if let Some(u) = username {
            match &self.username {
                Some(existing) if *existing != u => {
                    return Err(format!(
                        "the user is given twice, as `{existing}` in the URL and as `{u}` in \
                         `username`; keep one"
                    ))
                }
                _ => self.username = Some(u),
            }
        }
        if let Some(p) = password {
            if self.password.is_some() {
                return Err(
                    "the password is given twice, in the URL and in `password`; \
                            remove it from the URL and keep `password = { env = \"…\" }`"
                        .to_owned(),
                );
            }
            self.password = Some(p);
        }
        Ok(self)
    }

    /// Each host as a normalized `host:port` (lower-case, the scheme's default port filled
    /// in, loopback names as `localhost`), to tell whether two URLs reach one server.
    pub fn server_keys(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|(h, p)| {
                let host = h.to_ascii_lowercase();
                let host = match host.as_str() {
                    "127.0.0.1" | "[::1]" | "::1" | "localhost" => "localhost".to_owned(),
                    _ => host,
                };
                match p.or_else(|| default_port(&self.scheme)) {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            })
            .collect()
    }

    /// Whether the two URLs share a host (then they may be the same server or cluster).
    pub fn same_server(&self, other: &ServerUrl) -> bool {
        let mine = self.server_keys();
        other.server_keys().iter().any(|k| mine.contains(k))
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "mysql" => Some(3306),
        "mongodb" => Some(27017),
        "redis" | "rediss" => Some(6379),
        "http" => Some(80),
        "https" => Some(443),
        "postgres" | "postgresql" => Some(5432),
        _ => None,
    }
}

fn parse_host(text: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (addr, rest) = v6
            .split_once(']')
            .ok_or_else(|| "an IPv6 address needs a closing `]`".to_owned())?;
        let port = match rest {
            "" => None,
            r => Some(
                r.strip_prefix(':')
                    .ok_or_else(|| "expected `:port` after `]`".to_owned())?,
            ),
        };
        (format!("[{addr}]"), port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (text.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("the host is empty".to_owned());
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("the port `{p}` is not a number from 0 to 65535"))?,
        ),
    };
    Ok((host, port))
}

/// The URL as written, with anything between `:` and `@` in the credentials hidden.
fn redact_raw(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        // Not a URL at all: it might be a bare password pasted in the wrong place.
        return if text.contains('@') || text.contains(':') {
            "***".to_owned()
        } else {
            text.to_owned()
        };
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => text.to_owned(),
        },
        None => text.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EX: &str = "mysql://strata@127.0.0.1:3306";

    #[test]
    fn credentials_are_added_encoded_and_redacted() {
        let url = ServerUrl::parse("mysql://strata@127.0.0.1:3307/app?x=1", &["mysql"], EX)
            .unwrap()
            .with_credentials(None, Some(Secret::literal("p@ss:w/rd")))
            .unwrap();
        assert_eq!(
            url.expose(),
            "mysql://strata:p%40ss%3Aw%2Frd@127.0.0.1:3307/app?x=1"
        );
        assert_eq!(url.to_string(), "mysql://strata:***@127.0.0.1:3307/app?x=1");
        assert!(!format!("{url:?}").contains("p@ss"));
        assert_eq!(url.path(), "app");
        assert_eq!(url.password().map(Secret::expose), Some("p@ss:w/rd"));
    }

    #[test]
    fn passwords_in_the_url_are_decoded_and_never_shown() {
        let url = ServerUrl::parse("mysql://u:s%40cret@h", &["mysql"], EX).unwrap();
        assert_eq!(url.password().map(Secret::expose), Some("s@cret"));
        assert_eq!(url.redacted(), "mysql://u:***@h");
        let err = ServerUrl::parse("mysq://u:topsecret@h", &["mysql"], EX).unwrap_err();
        assert!(!err.contains("topsecret"), "{err}");
        assert!(err.contains("`mysql://`"), "{err}");
        let err = url
            .with_credentials(None, Some(Secret::literal("other")))
            .unwrap_err();
        assert!(
            err.contains("given twice") && !err.contains("s@cret"),
            "{err}"
        );
    }

    #[test]
    fn server_identity_normalizes_hosts_and_default_ports() {
        let p = |s: &str| ServerUrl::parse(s, &["redis", "mongodb"], EX).unwrap();
        assert!(p("redis://127.0.0.1").same_server(&p("redis://LOCALHOST:6379/")));
        assert!(!p("redis://127.0.0.1:6380").same_server(&p("redis://127.0.0.1:6379")));
        let rs = p("mongodb://a:1,b:2/?replicaSet=rs");
        assert_eq!(rs.server_keys(), vec!["a:1", "b:2"]);
        assert!(rs.same_server(&p("mongodb://b:2")));
        assert!(ServerUrl::parse("redis://h:port", &["redis"], EX).is_err());
        assert!(ServerUrl::parse("redis://[::1]:7000", &["redis"], EX).is_ok());
    }
}
