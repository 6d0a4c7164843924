//! What `validate` checks on a MySQL/MariaDB source before a copy (`Source::preflight`): the
//! server version, and that the user can read every selected table.

use crate::catalog::ident;
use crate::conn::MySqlLocation;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use pipeline::{Check, TableInfo};

/// Oldest supported versions: MySQL 5.7 and MariaDB 10.2 (JSON functions, `information_schema`
/// columns and binlog settings the connector relies on).
const MIN_MYSQL: (u32, u32) = (5, 7);
const MIN_MARIADB: (u32, u32) = (10, 2);

/// `(major, minor)` at the start of a version string such as `10.11.6-MariaDB-1`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The version check for `SELECT VERSION()`'s answer.
fn version_check(version: &str) -> Result<String, String> {
    let (product, min) = if version.to_lowercase().contains("mariadb") {
        ("MariaDB", MIN_MARIADB)
    } else {
        ("MySQL", MIN_MYSQL)
    };
    match major_minor(version) {
        Some(v) if v >= min => Ok(format!("{product} {version}")),
        Some(_) => Err(format!(
            "{product} {version} is too old: {product} {}.{} or later is required",
            min.0, min.1
        )),
        None => Err(format!("cannot read the server version `{version}`")),
    }
}

/// The account the server matched the user to, as `'user'@'host'`: the grantee of an exact
/// GRANT.
pub(crate) async fn grantee(conn: &mut Conn) -> Option<String> {
    let account: Option<String> = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .ok()
        .flatten();
    let (user, host) = account.as_deref()?.rsplit_once('@')?;
    Some(format!("'{user}'@'{host}'"))
}

/// The version and read-privilege checks (see the module documentation).
pub(crate) async fn checks(location: &MySqlLocation, tables: &[TableInfo]) -> Vec<Check> {
    let mut conn = match location.connect().await {
        Ok(c) => c,
        Err(e) => return vec![Check::new("source version", Err(e.to_string()))],
    };
    let version: Result<Option<String>, _> = conn.query_first("SELECT VERSION()").await;
    let mut out = vec![Check::new(
        "source version",
        match version {
            Ok(Some(v)) => version_check(&v),
            Ok(None) => Err("the server did not say its version".into()),
            Err(e) => Err(e.to_string()),
        },
    )];
    let grantee = grantee(&mut conn)
        .await
        .unwrap_or_else(|| format!("'{}'@'%'", location.user()));
    let db = location.database();
    let mut denied = Vec::new();
    for t in tables {
        let table = format!("{}.{}", ident(db), ident(&t.name));
        let probe = format!("SELECT * FROM {table} LIMIT 0");
        if let Err(e) = conn.query_drop(&probe).await {
            let reason = match &e {
                mysql_async::Error::Server(s) => s.message.clone(),
                other => other.to_string(),
            };
            denied.push(Check::new(
                format!("source read table \"{}\"", t.name),
                Err(format!(
                    "{reason}; run: GRANT SELECT ON {table} TO {grantee};"
                )),
            ));
        }
    }
    if denied.is_empty() {
        out.push(Check::new(
            "source read privileges",
            Ok(format!("user {grantee} can read {} table(s)", tables.len())),
        ));
    }
    out.extend(denied);
    out
}

#[cfg(test)]
mod tests {
    use super::version_check;

    #[test]
    fn versions_are_compared_per_product() {
        assert!(version_check("10.11.6-MariaDB-0+deb12u1").is_ok());
        assert!(version_check("10.1.48-MariaDB").is_err());
        assert!(version_check("5.7.44-log").is_ok());
        assert!(version_check("8.0.36").is_ok());
        assert!(version_check("5.6.51").is_err());
        assert!(version_check("5.5.68-MariaDB")
            .unwrap_err()
            .contains("MariaDB 10.2"));
    }
}
