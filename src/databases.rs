//! `--include-databases` for MySQL/MariaDB sources: one run per database, its name set in the
//! source URL and used as the target schema (unless `--target-schema` names another).

use crate::cli::CheckArgs;
use anyhow::Result;
use pipeline::Error;

/// The default target schema (`--target-schema`'s default).
const DEFAULT_SCHEMA: &str = "public";

/// Whether `source` is a MySQL or MariaDB URL.
fn is_mysql(source: &str) -> bool {
    let scheme = source.split_once("://").map_or("", |(s, _)| s);
    scheme.eq_ignore_ascii_case("mysql") || scheme.eq_ignore_ascii_case("mariadb")
}

/// One set of arguments per database when `check` names several with `--include-databases`
/// on a MySQL source; `None` otherwise (a single run as given).
pub fn per_database(check: &CheckArgs) -> Result<Option<Vec<CheckArgs>>> {
    let names: Vec<String> = check
        .selection
        .include_databases
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() || !is_mysql(&check.endpoints.source) {
        return Ok(None);
    }
    let mut url = url::Url::parse(&check.endpoints.source).map_err(|e| {
        Error::config(format!(
            "the source URL is not valid ({e}); expected mysql://user:password@host:3306/db"
        ))
    })?;
    let mut runs = Vec::with_capacity(names.len());
    for db in names {
        let mut one = check.clone();
        one.selection.include_databases.clear();
        url.set_path(&format!("/{}", crate::session::url_component(&db)));
        one.endpoints.source = url.to_string();
        if one.layout.target_schema == DEFAULT_SCHEMA {
            one.layout.target_schema = db;
        }
        runs.push(one);
    }
    Ok(Some(runs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn check(args: &[&str]) -> CheckArgs {
        let mut argv = vec![
            "seren-replicator",
            "verify",
            "--target",
            "postgresql://t/db",
        ];
        argv.extend_from_slice(args);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Command::Verify(v) => v.check,
            _ => unreachable!(),
        }
    }

    #[test]
    fn each_database_gets_its_url_and_schema() {
        let runs = per_database(&check(&[
            "--source",
            "mysql://u:p%40ss@h:3306/",
            "--include-databases",
            "shop,my db",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].endpoints.source, "mysql://u:p%40ss@h:3306/shop");
        assert_eq!(runs[0].layout.target_schema, "shop");
        assert_eq!(runs[1].endpoints.source, "mysql://u:p%40ss@h:3306/my%20db");
        assert_eq!(runs[1].layout.target_schema, "my db");
        assert!(runs[1].selection.include_databases.is_empty());
    }

    #[test]
    fn other_sources_and_single_runs_are_left_alone() {
        assert!(per_database(&check(&["--source", "mysql://h/db"]))
            .unwrap()
            .is_none());
        assert!(per_database(&check(&[
            "--source",
            "./app.db",
            "--include-databases",
            "x"
        ]))
        .unwrap()
        .is_none());
    }
}
