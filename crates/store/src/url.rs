//! `database.url`: what a CA's configuration names as its database.
//!
//! - `sqlite:FILE` (relative to the CA home, or absolute): the embedded default;
//! - `postgres://[USER@]HOST[:PORT][,HOST[:PORT]...]/DB[?PARAMS]`: PostgreSQL,
//!   with several hosts for failover. `target_session_attrs=read-write` (the
//!   libpq parameter) makes Lockbox pick the host that accepts writes, as libpq
//!   does; sqlx itself knows one host only, so the list is handled here.
//!
//! A password in the URL is refused: URLs end up in configuration files,
//! process listings and logs. PostgreSQL passwords come from `PGPASSWORD` or a
//! password file (`~/.pgpass`, `PGPASSFILE`), which the driver reads.
//!
//! Parsing is pure (no I/O) and faces hostile text: a fuzz target drives it.

use std::fmt;

/// A parsed `database.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file, as written after `sqlite:` (relative paths are relative to the home).
    Sqlite(String),
    /// A PostgreSQL database on one or more hosts.
    Postgres(PgUrl),
}

/// A PostgreSQL URL with its host list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgUrl {
    /// User name, if given.
    pub user: Option<String>,
    /// `(host, port)` in the order to try.
    pub hosts: Vec<(String, u16)>,
    /// Database name.
    pub database: String,
    /// Only a host that accepts writes will do (`target_session_attrs=read-write`
    /// or `primary`).
    pub read_write: bool,
    /// The other query parameters, passed to the driver unchanged.
    pub params: Vec<(String, String)>,
}

/// Why a `database.url` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("database URL: {0}")]
pub struct UrlError(String);

const MAX_URL: usize = 4096;
const MAX_HOSTS: usize = 16;
const MAX_PARAMS: usize = 32;
const DEFAULT_PORT: u16 = 5432;

impl DatabaseUrl {
    /// Parses a `database.url` value.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        if text.len() > MAX_URL {
            return Err(UrlError("longer than 4096 bytes".into()));
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(UrlError("contains spaces or control characters".into()));
        }
        if let Some(file) = text.strip_prefix("sqlite:") {
            let file = file.strip_prefix("//").unwrap_or(file);
            if file.is_empty() || file.contains('?') {
                return Err(UrlError("expected sqlite:FILE".into()));
            }
            return Ok(DatabaseUrl::Sqlite(file.to_string()));
        }
        let rest = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
            .ok_or_else(|| {
                UrlError("expected sqlite:FILE or postgres://USER@HOST:PORT/DB".into())
            })?;
        Ok(DatabaseUrl::Postgres(PgUrl::parse_after_scheme(rest)?))
    }

    /// The backend's name (`sqlite` or `postgres`).
    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

impl PgUrl {
    fn parse_after_scheme(rest: &str) -> Result<Self, UrlError> {
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| UrlError("no database name (postgres://HOST/DB)".into()))?;
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let database = decode(path)?;
        if database.is_empty() || database.contains('/') {
            return Err(UrlError("no database name (postgres://HOST/DB)".into()));
        }
        let (user, hostlist) = match authority.rsplit_once('@') {
            Some((u, h)) => {
                if u.contains(':') {
                    return Err(UrlError(
                        "a password in the URL is refused: use PGPASSWORD or a password file (~/.pgpass)"
                            .into(),
                    ));
                }
                let u = decode(u)?;
                if u.is_empty() {
                    return Err(UrlError("empty user name".into()));
                }
                (Some(u), h)
            }
            None => (None, authority),
        };
        let mut hosts = vec![];
        for h in hostlist.split(',') {
            hosts.push(parse_host(h)?);
            if hosts.len() > MAX_HOSTS {
                return Err(UrlError("more than 16 hosts".into()));
            }
        }
        // Several hosts are for failover: only the primary will do unless
        // the URL says `target_session_attrs=any`.
        let mut read_write = hosts.len() > 1;
        let mut params = vec![];
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k)?, decode(v)?);
            match k.as_str() {
                "target_session_attrs" => match v.as_str() {
                    "read-write" | "primary" => read_write = true,
                    "any" => read_write = false,
                    _ => {
                        return Err(UrlError(format!(
                            "target_session_attrs={v} is not supported (read-write, primary or any)"
                        )))
                    }
                },
                "password" => {
                    return Err(UrlError(
                        "a password in the URL is refused: use PGPASSWORD or a password file (~/.pgpass)"
                            .into(),
                    ))
                }
                "host" | "hostaddr" | "port" | "user" | "dbname" => {
                    return Err(UrlError(format!(
                        "'{k}' belongs in the URL itself, not in its parameters"
                    )))
                }
                _ => params.push((k, v)),
            }
        }
        // A database on another machine is reached over TLS with the server
        // verified, unless the URL chooses (`sslmode=...`): the database holds
        // every archived key and credential hash.
        let remote = hosts.iter().any(|(h, _)| !is_loopback(h));
        if remote
            && !params
                .iter()
                .any(|(k, _)| k == "sslmode" || k == "ssl-mode")
        {
            params.push(("sslmode".into(), "verify-full".into()));
        }
        if params.len() > MAX_PARAMS {
            return Err(UrlError("more than 32 parameters".into()));
        }
        let url = PgUrl {
            user,
            hosts,
            database,
            read_write,
            params,
        };
        // What is accepted prints back within the limit (percent-encoding
        // grows text), so a stored URL always reads back.
        if url.to_string().len() > MAX_URL {
            return Err(UrlError("longer than 4096 bytes once encoded".into()));
        }
        Ok(url)
    }

    /// A single-host URL for the driver (`host` is an index into `hosts`).
    pub fn single_host_url(&self, host: usize) -> Option<String> {
        let (h, port) = self.hosts.get(host)?;
        let mut s = String::from("postgres://");
        if let Some(u) = &self.user {
            s.push_str(&encode(u));
            s.push('@');
        }
        if h.contains(':') {
            s.push_str(&format!("[{h}]:{port}"));
        } else {
            s.push_str(&format!("{}:{port}", encode(h)));
        }
        s.push('/');
        s.push_str(&encode(&self.database));
        for (i, (k, v)) in self.params.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(&encode(k));
            s.push('=');
            s.push_str(&encode(v));
        }
        Some(s)
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgres://")?;
        if let Some(u) = &self.user {
            write!(f, "{}@", encode(u))?;
        }
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|(h, p)| {
                if h.contains(':') {
                    format!("[{h}]:{p}")
                } else {
                    format!("{}:{p}", encode(h))
                }
            })
            .collect();
        write!(f, "{}/{}", hosts.join(","), encode(&self.database))?;
        let mut params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        if self.read_write {
            params.push("target_session_attrs=read-write".into());
        } else if self.hosts.len() > 1 {
            params.push("target_session_attrs=any".into());
        }
        if !params.is_empty() {
            write!(f, "?{}", params.join("&"))?;
        }
        Ok(())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `sqlite://X` reads as X: a file written with a leading `//`
            // keeps it only behind another `//`.
            DatabaseUrl::Sqlite(file) if file.starts_with("//") => write!(f, "sqlite://{file}"),
            DatabaseUrl::Sqlite(file) => write!(f, "sqlite:{file}"),
            DatabaseUrl::Postgres(pg) => pg.fmt(f),
        }
    }
}

/// Whether a host name is this machine (TLS is then not required by default).
pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.starts_with('/')
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn parse_host(h: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| UrlError(format!("bad host '{h}'")))?;
        match after {
            "" => (v6.to_string(), None),
            p => (
                v6.to_string(),
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| UrlError(format!("bad host '{h}'")))?,
                ),
            ),
        }
    } else {
        match h.split_once(':') {
            Some((host, port)) => (decode(host)?, Some(port)),
            None => (decode(h)?, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError("empty host name".into()));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/'))
    {
        return Err(UrlError(format!("bad host name '{host}'")));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| UrlError(format!("bad port '{p}'")))?,
    };
    Ok((host, port))
}

/// Percent-decodes a URL component into UTF-8 text.
fn decode(s: &str) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UrlError("bad percent escape".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| UrlError("not UTF-8".into()))?;
    if text.chars().any(char::is_control) {
        return Err(UrlError("contains control characters".into()));
    }
    Ok(text)
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:ca.db").unwrap(),
            DatabaseUrl::Sqlite("ca.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/ca.db").unwrap(),
            DatabaseUrl::Sqlite("/var/ca.db".into())
        );
        assert!(DatabaseUrl::parse("sqlite:").is_err());
        // found by the fuzz target: printing reads back the same
        for text in ["sqlite:////ca:zdb", "sqlite:/abs/ca.db", "sqlite:ca.db"] {
            let u = DatabaseUrl::parse(text).unwrap();
            assert_eq!(DatabaseUrl::parse(&u.to_string()).unwrap(), u, "{text}");
        }
        assert!(DatabaseUrl::parse("mysql://x/y").is_err());
    }

    #[test]
    fn multi_host_failover_url() {
        let u = DatabaseUrl::parse(
            "postgres://lockbox@h1:5432,h2:5433/ca?target_session_attrs=read-write&sslmode=disable",
        )
        .unwrap();
        let DatabaseUrl::Postgres(pg) = u else {
            panic!("not postgres")
        };
        assert_eq!(pg.user.as_deref(), Some("lockbox"));
        assert_eq!(
            pg.hosts,
            vec![("h1".to_string(), 5432), ("h2".to_string(), 5433)]
        );
        assert_eq!(pg.database, "ca");
        assert!(pg.read_write);
        assert_eq!(
            pg.single_host_url(1).unwrap(),
            "postgres://lockbox@h2:5433/ca?sslmode=disable"
        );
        // a remote host without sslmode gets verify-full; two hosts mean read-write
        let DatabaseUrl::Postgres(remote) = DatabaseUrl::parse("postgres://db1,db2/ca").unwrap()
        else {
            panic!("not postgres")
        };
        assert!(remote.read_write);
        assert_eq!(
            remote.params,
            vec![("sslmode".to_string(), "verify-full".to_string())]
        );
        let DatabaseUrl::Postgres(local) =
            DatabaseUrl::parse("postgres://127.0.0.1:5/ca?target_session_attrs=any").unwrap()
        else {
            panic!("not postgres")
        };
        assert!(!local.read_write && local.params.is_empty());
        assert_eq!(
            pg.to_string(),
            "postgres://lockbox@h1:5432,h2:5433/ca?sslmode=disable&target_session_attrs=read-write"
        );
        assert_eq!(
            DatabaseUrl::parse(&pg.to_string()).unwrap(),
            DatabaseUrl::Postgres(pg)
        );
    }

    #[test]
    fn defaults_and_ipv6() {
        let DatabaseUrl::Postgres(pg) = DatabaseUrl::parse("postgresql://[::1]:6000,db/x").unwrap()
        else {
            panic!("not postgres")
        };
        assert_eq!(
            pg.hosts,
            vec![("::1".to_string(), 6000), ("db".to_string(), 5432)]
        );
        assert_eq!(
            pg.single_host_url(0).unwrap(),
            "postgres://[::1]:6000/x?sslmode=verify-full"
        );
        assert!(pg.read_write, "several hosts: the primary only");
    }

    #[test]
    fn refusals() {
        for bad in [
            "postgres://u:secret@h/db",
            "postgres://h/db?password=x",
            "postgres://h",
            "postgres://h/",
            "postgres://h:0/db",
            "postgres://h:99999/db",
            "postgres://h:x/db",
            "postgres://,h/db",
            "postgres://h/db?target_session_attrs=standby",
            "postgres://h/db?host=evil",
            "postgres://localhost/db?hostaddr=10.0.0.5",
            "postgres://h%00/db",
            "postgres://h/d b",
            "postgres://[::1/db",
        ] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad} accepted");
        }
        let e = DatabaseUrl::parse("postgres://u:secret@h/db").unwrap_err();
        assert!(!e.to_string().contains("secret"));
    }
}
