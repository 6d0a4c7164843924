//! What `validate` checks on a MongoDB source before a copy (`Source::preflight`): the server
//! version, and that the user can read every selected collection.

use crate::source::MongoSource;
use mongodb::bson::doc;
use pipeline::{Check, TableInfo};

/// Oldest supported server: 4.0 (multi-document snapshots and change streams on databases).
const MIN_VERSION: (u32, u32) = (4, 0);

/// The version check for `buildInfo`'s `version`.
fn version_check(version: &str) -> Result<String, String> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (next(), next()) {
        (Some(major), Some(minor)) if (major, minor) >= MIN_VERSION => {
            Ok(format!("MongoDB {version}"))
        }
        (Some(_), Some(_)) => Err(format!(
            "MongoDB {version} is too old: MongoDB {}.{} or later is required",
            MIN_VERSION.0, MIN_VERSION.1
        )),
        _ => Err(format!("cannot read the server version `{version}`")),
    }
}

/// The version and read-privilege checks (see the module documentation).
pub(crate) async fn checks(source: &MongoSource, tables: &[TableInfo]) -> Vec<Check> {
    let version = match source.db.run_command(doc! {"buildInfo": 1}).await {
        Ok(info) => match info.get_str("version") {
            Ok(v) => version_check(v),
            Err(_) => Err("the server did not say its version (buildInfo)".into()),
        },
        Err(e) => Err(e.to_string()),
    };
    let mut out = vec![Check::new("source version", version)];
    let mut denied = Vec::new();
    let mut user: Option<String> = None;
    for t in tables {
        // At most one `_id`, in a single batch: proves the `find` privilege, reads nothing.
        let find = doc! {
            "find": &t.name, "filter": {}, "projection": {"_id": 1}, "limit": 1,
            "singleBatch": true,
        };
        if let Err(e) = source.db.run_command(find).await {
            if user.is_none() {
                user = Some(authenticated_user(source).await);
            }
            denied.push(Check::new(
                format!("source read collection \"{}\"", t.name),
                Err(format!(
                    "{}; grant the user the `read` role on database `{}`: \
                     db.grantRolesToUser(\"{}\", [{{role: \"read\", db: \"{}\"}}])",
                    e,
                    source.db.name(),
                    user.as_deref().unwrap_or("USER"),
                    source.db.name()
                )),
            ));
        }
    }
    if denied.is_empty() {
        out.push(Check::new(
            "source read privileges",
            Ok(format!("{} collection(s) readable", tables.len())),
        ));
    }
    out.extend(denied);
    out
}

/// The user the connection authenticated as (`connectionStatus`), or `USER` when unknown.
async fn authenticated_user(source: &MongoSource) -> String {
    let status = source
        .db
        .run_command(doc! {"connectionStatus": 1})
        .await
        .ok();
    status
        .as_ref()
        .and_then(|s| s.get_document("authInfo").ok())
        .and_then(|a| a.get_array("authenticatedUsers").ok())
        .and_then(|users| users.first()?.as_document()?.get_str("user").ok())
        .unwrap_or("USER")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::version_check;

    #[test]
    fn versions_below_4_0_are_refused() {
        assert!(version_check("8.2.11").is_ok());
        assert!(version_check("4.0.0").is_ok());
        assert!(version_check("3.6.23")
            .unwrap_err()
            .contains("4.0 or later"));
    }
}
