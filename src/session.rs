//! What `init`, `validate` and `verify` share: opening the source and target, and resolving the
//! table selection against the source catalog.

use crate::cli::{CheckArgs, Endpoints, Selection};
use anyhow::Result;
use pipeline::{Error, Side, Source, SourceOptions, TableInfo};
use seren_postgres::PgTarget;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The opened source and the parsed target.
pub struct Session {
    /// The source connector instance.
    pub source: Arc<dyn Source>,
    /// The target PostgreSQL connection settings.
    pub target: PgTarget,
}

/// Open the source through the registry and parse the target (no connection to it yet).
pub async fn open(endpoints: &Endpoints, options: SourceOptions) -> Result<Session> {
    let registry = crate::connectors::registry();
    let shown = seren_postgres::redact_conninfo(&endpoints.source);
    let factory = registry.find(&endpoints.source, &shown)?;
    let source = factory.open(&endpoints.source, &options).await?;
    Ok(Session {
        source,
        target: target(endpoints)?,
    })
}

/// The target's connection settings, with the password from `--password-file` when given.
pub fn target(endpoints: &Endpoints) -> Result<PgTarget> {
    Ok(PgTarget::parse(&target_conninfo(endpoints)?, Side::Target)?)
}

/// The target's connection string, with the password from `--password-file` when given.
pub fn target_conninfo(endpoints: &Endpoints) -> Result<String> {
    Ok(match &endpoints.password_file {
        Some(file) => {
            let pw = read_password_file(file, "password file", "--password-file")?;
            with_password(&endpoints.target, &pw)
        }
        None => endpoints.target.clone(),
    })
}

/// The first line of a password file; an unreadable file is a usage error naming it (`what`)
/// and the flag that gave it.
pub fn read_password_file(file: &std::path::Path, what: &str, flag: &str) -> Result<String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::config(format!(
            "cannot read the {what} {}: {e}; check {flag}",
            file.display()
        ))
    })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// Whether a source string names a PostgreSQL server (URL or `key=value` conninfo).
pub fn is_postgres(source: &str) -> bool {
    seren_postgres::source::is_postgres_location(source)
}

/// `text` percent-encoded for any part of a URL (everything but unreserved characters).
pub fn url_component(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// `conninfo` with `password` added, in the string's own syntax: a percent-encoded URL
/// parameter, or a quoted `key=value` pair.
pub fn with_password(conninfo: &str, password: &str) -> String {
    if conninfo.contains("://") {
        let encoded = url_component(password);
        let sep = if conninfo.contains('?') { '&' } else { '?' };
        format!("{conninfo}{sep}password={encoded}")
    } else {
        let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
        format!("{conninfo} password='{quoted}'")
    }
}

/// Source options from the layout flags.
pub fn source_options(check: &CheckArgs) -> Result<SourceOptions> {
    let layout = &check.layout;
    Ok(SourceOptions {
        mode: layout.mode,
        on_type_mismatch: layout.on_type_mismatch,
        zero_dates: layout.zero_dates,
        flatten: crate::flatten::columns(layout, &check.selection, &check.endpoints.source)?,
        ..SourceOptions::default()
    })
}

/// The selected tables, described, with their row filters. Unknown names are an error that
/// lists what the source has.
pub async fn select(
    source: &dyn Source,
    selection: &Selection,
) -> Result<Vec<(TableInfo, Option<String>)>> {
    let pg_only = selection.postgres_only_flags();
    if !pg_only.is_empty() {
        return Err(Error::config(format!(
            "{} only apply to PostgreSQL sources; source {} is {}",
            pg_only.join(", "),
            source.location(),
            source.kind()
        ))
        .into());
    }
    if !selection.include_databases.is_empty() {
        return Err(Error::config(format!(
            "--include-databases only applies to PostgreSQL and MySQL/MariaDB sources; source {} \
             is {}: give one source per run instead",
            source.location(),
            source.kind()
        ))
        .into());
    }
    let split = |list: &[String]| -> Vec<String> {
        list.iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let (include, exclude) = (
        split(&selection.include_tables),
        split(&selection.exclude_tables),
    );
    let all = source.list_tables().await?;
    let known = |name: &str, flag: &str| -> Result<()> {
        if all.iter().any(|t| t == name) {
            return Ok(());
        }
        Err(Error::config(format!(
            "{flag}: table \"{name}\" does not exist in source {}; its tables are: {}",
            source.location(),
            if all.is_empty() {
                "(none)".to_string()
            } else {
                all.join(", ")
            }
        ))
        .into())
    };
    for t in &include {
        known(t, "--include-tables")?;
    }
    for t in &exclude {
        known(t, "--exclude-tables")?;
    }
    let mut filters = BTreeMap::new();
    for f in &selection.table_filters {
        let (table, predicate) = f.split_once(':').ok_or_else(|| {
            Error::config(format!(
                "--table-filter `{f}` must be TABLE:PREDICATE, e.g. \"orders:created_at > '2024-01-01'\""
            ))
        })?;
        known(table, "--table-filter")?;
        filters.insert(table.to_string(), predicate.to_string());
    }
    let mut out = Vec::new();
    for name in all {
        let included = include.is_empty() || include.contains(&name);
        if !included || exclude.contains(&name) {
            continue;
        }
        let info = source.describe(&name).await?;
        let filter = filters.remove(&name);
        out.push((info, filter));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::with_password;

    #[test]
    fn password_is_added_in_the_strings_own_syntax() {
        assert_eq!(
            with_password("postgresql://u@h/db", "a b:c"),
            "postgresql://u@h/db?password=a%20b%3Ac"
        );
        assert_eq!(
            with_password("postgresql://u@h/db?x=1", "p"),
            "postgresql://u@h/db?x=1&password=p"
        );
        assert_eq!(
            with_password("host=h", "it's\\"),
            "host=h password='it\\'s\\\\'"
        );
    }
}
