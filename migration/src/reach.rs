//! Reaching a database, shared by the migration CLI and the library: a URL
//! with its password hidden for messages, and an early check that a server
//! listens where the URL points (the pool would retry a refused connection
//! until its timeout and then say only "pool timed out").

use std::time::Duration;

use sea_orm_migration::sea_orm::{DbErr, RuntimeErr};

/// `url` with its password (in the user info or a `password=` query
/// parameter) replaced by `***`, for screens, messages and logs. Works on
/// malformed URLs too, erring towards hiding more.
pub fn redact(url: &str) -> String {
    let mut out = match url.find("://") {
        Some(scheme_end) => {
            let (head, rest) = url.split_at(scheme_end + 3);
            match rest.rfind('@') {
                Some(at) => {
                    let userinfo = &rest[..at];
                    match userinfo.split_once(':') {
                        Some((user, _password)) => format!("{head}{user}:***{}", &rest[at..]),
                        None => url.to_owned(),
                    }
                }
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    if let Some(query_start) = out.find('?') {
        let (base, query) = out.split_at(query_start + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

/// `Ok` when the server URL's host and port accept a TCP connection within
/// `timeout`, else one line saying that nothing answers there (the URL
/// redacted). Unix sockets (a host that is a path, or a `host=`/`socket=`
/// parameter) and URLs it cannot read are left to the driver.
///
/// # Errors
/// The line above.
pub async fn someone_listens(url: &str, timeout: Duration) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(());
    };
    let default_port = match scheme {
        "mysql" | "mariadb" => 3306,
        "postgres" | "postgresql" => 5432,
        _ => return Ok(()),
    };
    let (authority, query) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path.split_once('?').map_or("", |(_, q)| q)),
        None => (rest.split_once('?').map_or(rest, |(a, _)| a), ""),
    };
    if query
        .split('&')
        .any(|pair| pair.starts_with("host=") || pair.starts_with("socket="))
    {
        return Ok(());
    }
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            match port.parse::<u16>() {
                Ok(port) => (host, port),
                Err(_) => return Ok(()),
            }
        }
        _ => (host_port, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.starts_with('/') || host.starts_with('%') {
        return Ok(());
    }
    let explain = |why: String| {
        format!(
            "{why}: start the database server, or fix DATABASE_URL ({})",
            redact(url)
        )
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(explain(format!("nothing answers at {host}:{port} ({err})"))),
        Err(_) => Err(explain(format!(
            "{host}:{port} did not answer within {} s",
            timeout.as_secs()
        ))),
    }
}

/// What went wrong, once: the server's own message for a database error
/// (without the server's source position that sqlx appends), else the
/// innermost cause (sea-orm and sqlx each wrap and repeat it).
pub fn cause_of(err: &DbErr) -> String {
    let sqlx = match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    };
    if let Some(db) = sqlx.and_then(|e| e.as_database_error()) {
        return db.message().to_owned();
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_and_keeps_the_rest() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/x?sslmode=disable"),
            "postgres://app:***@db:5432/x?sslmode=disable"
        );
        assert_eq!(redact("mysql://root@h/test"), "mysql://root@h/test");
        assert_eq!(
            redact("sqlite://recents.db?mode=rwc"),
            "sqlite://recents.db?mode=rwc"
        );
        assert_eq!(
            redact("postgres://h/db?user=a&password=s3cret"),
            "postgres://h/db?user=a&password=***"
        );
        // A password holding `@`, `/` or `:` is hidden whole.
        let odd = redact("postgres://app:p@ss/w:rd@db/x");
        assert!(!odd.contains("ss/w"), "{odd}");
    }

    #[tokio::test]
    async fn a_refused_port_is_named_with_the_password_hidden() {
        let err = someone_listens("postgres://u:s3cret@127.0.0.1:1/x", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.contains("nothing answers at 127.0.0.1:1"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(
            someone_listens("postgres:///x?host=/run/postgresql", Duration::from_secs(1))
                .await
                .is_ok()
        );
    }
}
