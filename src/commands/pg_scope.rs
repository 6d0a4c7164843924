//! What `init` and `verify` share for PostgreSQL sources: the selection rules from the flags,
//! the databases they pick (each paired with its target database), and one database's scope
//! as the connector reads it.

use crate::cli::{Endpoints, Selection};
use crate::rules::{split_list, CliRules, DbRules, Rules};
use crate::session;
use anyhow::Result;
use pipeline::Side;
use seren_postgres::clone::{self, TableRules};
use seren_postgres::PgTarget;

/// The selected databases of a run.
pub struct Databases {
    /// The merged selection rules.
    pub rules: Rules,
    /// The source as given.
    pub source: PgTarget,
    /// The target as given.
    pub target: PgTarget,
    /// Each selected database with its source and target connection settings: the target
    /// database of the URL for a single database, else the same-named one.
    pub pairs: Vec<(String, PgTarget, PgTarget)>,
    /// Whether several databases (or another than the URL's) are selected.
    pub several: bool,
}

impl Databases {
    /// Resolve the selection flags against the source's databases.
    pub async fn resolve(endpoints: &Endpoints, sel: &Selection) -> Result<Databases> {
        let rules = Rules::new(
            &CliRules {
                include_databases: sel.include_databases.clone(),
                exclude_databases: sel.exclude_databases.clone(),
                all_databases: sel.all_databases,
                include_tables: split(&sel.include_tables),
                exclude_tables: split(&sel.exclude_tables),
                schema_only_tables: split(&sel.schema_only_tables),
                table_filters: sel.table_filters.clone(),
                time_filters: sel.time_filters.clone(),
            },
            sel.config.as_deref(),
        )?;
        let source = PgTarget::parse(&endpoints.source, Side::Source)?;
        let target = session::target(endpoints)?;
        let available = clone::databases(&source).await?;
        let dbs = rules.databases(source.dbname(), &available)?;
        let several = dbs.len() > 1 || dbs.first().map(String::as_str) != Some(source.dbname());
        let pairs = dbs
            .into_iter()
            .map(|db| {
                let t = if several {
                    target.with_dbname(&db)
                } else {
                    target.clone()
                };
                let s = source.with_dbname(&db);
                (db, s, t)
            })
            .collect();
        Ok(Databases {
            rules,
            source,
            target,
            pairs,
            several,
        })
    }

    /// The scope of database `db`.
    pub fn scope(&self, db: &str) -> Scope {
        Scope {
            rules: self.rules.for_database(db),
            fingerprint: self.rules.fingerprint(),
        }
    }
}

/// One database's selection, as the PostgreSQL connector reads it.
pub struct Scope {
    rules: DbRules,
    fingerprint: String,
}

impl TableRules for Scope {
    fn selects(&self, schema: &str, table: &str) -> bool {
        self.rules.selects(schema, table)
    }
    fn schema_only(&self, schema: &str, table: &str) -> bool {
        self.rules.schema_only(schema, table)
    }
    fn predicate(&self, schema: &str, table: &str) -> Option<String> {
        self.rules.predicate(schema, table)
    }
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
    fn named(&self) -> Vec<(String, String, String)> {
        self.rules
            .named_tables()
            .into_iter()
            .map(|(flag, t)| (flag.to_string(), t.schema, t.table))
            .collect()
    }
}

/// Comma-separated lists, split outside double quotes (`a,"b,c"` is two names).
fn split(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| split_list(v)).collect()
}
