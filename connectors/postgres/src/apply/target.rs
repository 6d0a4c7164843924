//! The SQL that merges rows loaded into a work table (a temp or staging table with the COPY
//! columns) into a table `init` wrote, by row identity: the JSONB `id`, the native primary key,
//! or, for a native table without one, the whole row counted as a multiset.
//!
//! Rows compare by their text form (`ROW(…)::text`), not with `=`: `=` calls `0` and `-0`
//! equal, and `1.0` and `1.00` numerics, which `verify` (byte for byte) tells apart.

use crate::ddl::{check_ident, qualified, quote_ident};
use pipeline::encode::{jsonb_columns, native_columns};
use pipeline::{Mode, Result, TableInfo};

/// A target table and how its rows are identified.
#[derive(Debug, Clone)]
pub struct TargetTable {
    /// The table's source name (also its name in the target).
    pub name: String,
    /// `"schema"."name"`.
    pub sql_name: String,
    /// The COPY columns, quoted, in tuple order.
    pub columns: Vec<String>,
    /// `"name" type` for each COPY column, without constraints (work tables also hold delete
    /// rows, whose non-key columns may be NULL).
    definitions: Vec<String>,
    /// Identity columns, quoted; empty for a native table without a primary key.
    key: Vec<String>,
    /// Whether the table is in JSONB layout (refreshes `_migrated_at` on change).
    jsonb: bool,
}

impl TargetTable {
    /// The layout `init` gave `table` in `schema` in `mode`.
    pub fn new(table: &TableInfo, schema: &str, mode: Mode) -> Result<Self> {
        check_ident("table", &table.name)?;
        let (columns, definitions, key): (Vec<String>, Vec<String>, Vec<String>) = match mode {
            Mode::Jsonb => {
                let layout = jsonb_columns(table)?;
                let cols: Vec<String> = layout.iter().map(|(c, _)| quote_ident(c)).collect();
                let defs = layout
                    .iter()
                    .map(|(c, t)| format!("{} {}", quote_ident(c), t.sql_name()));
                (cols, defs.collect(), vec![quote_ident("id")])
            }
            Mode::Native => {
                let native = native_columns(table)?;
                let cols: Vec<String> = native.iter().map(|(c, _)| quote_ident(c)).collect();
                let defs = native
                    .iter()
                    .map(|(c, t)| format!("{} {}", quote_ident(c), t.sql_name()));
                let key = table.primary_key.iter().map(|c| quote_ident(c)).collect();
                (cols, defs.collect(), key)
            }
        };
        Ok(TargetTable {
            name: table.name.clone(),
            sql_name: qualified(schema, &table.name),
            columns,
            definitions,
            key,
            jsonb: mode == Mode::Jsonb,
        })
    }

    /// Whether rows are identified by a key (else by their whole content).
    pub fn keyed(&self) -> bool {
        !self.key.is_empty()
    }

    /// Column definitions of a work table: an ordinal numbering rows in COPY order, then the
    /// COPY columns.
    pub fn work_definitions(&self) -> String {
        let mut defs = vec!["\"_seren_ord\" bigint GENERATED ALWAYS AS IDENTITY".to_string()];
        defs.extend(self.definitions.iter().cloned());
        defs.join(", ")
    }

    /// `COPY work (columns) FROM STDIN (FORMAT binary)`.
    pub fn copy_sql(&self, work: &str) -> String {
        format!(
            "COPY {work} ({}) FROM STDIN (FORMAT binary)",
            self.columns.join(", ")
        )
    }

    fn list(&self, prefix: &str, columns: &[String]) -> String {
        columns
            .iter()
            .map(|c| format!("{prefix}{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn row_text(&self, prefix: &str, columns: &[String]) -> String {
        format!("ROW({})::text", self.list(prefix, columns))
    }

    /// Keyed tables: insert new rows and update changed ones from `work`; returns one row
    /// (inserted, updated). With `dedupe`, the last row (highest ordinal) of each key wins.
    pub fn upsert_sql(&self, work: &str, dedupe: bool) -> String {
        let cols = self.columns.join(", ");
        let key = self.key.join(", ");
        let select = if dedupe {
            format!(
                "SELECT DISTINCT ON ({key}) {cols} FROM {work} ORDER BY {key}, \"_seren_ord\" DESC"
            )
        } else {
            format!("SELECT {cols} FROM {work}")
        };
        let rest: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.key.contains(c))
            .cloned()
            .collect();
        let action = if rest.is_empty() {
            "DO NOTHING".to_string()
        } else {
            let mut set: Vec<String> = rest.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
            if self.jsonb {
                set.push("\"_migrated_at\" = now()".into());
            }
            format!(
                "DO UPDATE SET {} WHERE {} IS DISTINCT FROM {}",
                set.join(", "),
                self.row_text("t.", &rest),
                self.row_text("EXCLUDED.", &rest)
            )
        };
        format!(
            "WITH up AS (INSERT INTO {} AS t ({cols}) {select} ON CONFLICT ({key}) {action} \
             RETURNING (t.xmax = 0) AS inserted) \
             SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up",
            self.sql_name
        )
    }

    /// Keyed tables: delete the rows whose key is in `work`.
    pub fn delete_keys_sql(&self, work: &str) -> String {
        format!(
            "DELETE FROM {} AS t USING {work} AS w WHERE ({}) = ({})",
            self.sql_name,
            self.list("t.", &self.key),
            self.list("w.", &self.key)
        )
    }

    /// Keyed tables: delete the rows whose key is not in `work` (gone from the source).
    pub fn delete_missing_sql(&self, work: &str) -> String {
        format!(
            "DELETE FROM {} AS t WHERE NOT EXISTS (SELECT 1 FROM {work} AS w WHERE ({}) = ({}))",
            self.sql_name,
            self.list("w.", &self.key),
            self.list("t.", &self.key)
        )
    }

    /// Tables without a key: append the rows of `work`, in order.
    pub fn insert_all_sql(&self, work: &str) -> String {
        let cols = self.columns.join(", ");
        format!(
            "INSERT INTO {} ({cols}) SELECT {cols} FROM {work} ORDER BY \"_seren_ord\"",
            self.sql_name
        )
    }

    /// Tables without a key: for each row of `work`, delete one target row equal to it.
    pub fn delete_matching_sql(&self, work: &str) -> String {
        let r = self.row_text("", &self.columns);
        format!(
            "WITH d AS (SELECT {r} AS _seren_r, count(*) AS _seren_k FROM {work} GROUP BY 1), \
             t AS (SELECT ctid AS _seren_c, {r} AS _seren_r, row_number() OVER (PARTITION BY {r}) AS _seren_n \
                   FROM {tbl} WHERE {r} IN (SELECT _seren_r FROM d)) \
             DELETE FROM {tbl} WHERE ctid IN (SELECT t._seren_c FROM t JOIN d USING (_seren_r) WHERE t._seren_n <= d._seren_k)",
            tbl = self.sql_name
        )
    }

    /// Tables without a key, refresh: delete target rows beyond their count in `work` (the
    /// source's rows), so the target holds no row more often than the source does.
    pub fn delete_surplus_sql(&self, work: &str) -> String {
        let r = self.row_text("", &self.columns);
        format!(
            "WITH s AS (SELECT {r} AS _seren_r, count(*) AS _seren_k FROM {work} GROUP BY 1), \
             t AS (SELECT ctid AS _seren_c, {r} AS _seren_r, row_number() OVER (PARTITION BY {r}) AS _seren_n \
                   FROM {tbl}) \
             DELETE FROM {tbl} WHERE ctid IN \
             (SELECT t._seren_c FROM t LEFT JOIN s USING (_seren_r) WHERE t._seren_n > coalesce(s._seren_k, 0))",
            tbl = self.sql_name
        )
    }

    /// Tables without a key, refresh (after `delete_surplus_sql`): insert the rows of `work`
    /// the target holds fewer times than the source.
    pub fn insert_missing_sql(&self, work: &str) -> String {
        let r = self.row_text("", &self.columns);
        let cols = self.columns.join(", ");
        format!(
            "WITH t AS (SELECT {r} AS _seren_r, count(*) AS _seren_k FROM {tbl} GROUP BY 1), \
             s AS (SELECT {cols}, {r} AS _seren_r, row_number() OVER (PARTITION BY {r}) AS _seren_n \
                   FROM {work}) \
             INSERT INTO {tbl} ({cols}) SELECT {cols} FROM s LEFT JOIN t USING (_seren_r) \
             WHERE s._seren_n > coalesce(t._seren_k, 0)",
            tbl = self.sql_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn table(columns: &[&str], key: &[&str]) -> TableInfo {
        TableInfo {
            name: "My \"T\"".into(),
            schema: Arc::new(Schema::new(
                columns
                    .iter()
                    .map(|c| Field::new(*c, DataType::Int64, true))
                    .collect::<Vec<_>>(),
            )),
            primary_key: key.iter().map(|k| k.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn upserts_quote_names_and_compare_rows_by_text() {
        let t = TargetTable::new(&table(&["id", "select"], &["id"]), "s", Mode::Native).unwrap();
        assert!(t.keyed());
        let sql = t.upsert_sql("w", true);
        assert!(
            sql.contains("INSERT INTO \"s\".\"My \"\"T\"\"\" AS t"),
            "{sql}"
        );
        assert!(sql.contains("DISTINCT ON (\"id\")"), "{sql}");
        assert!(
            sql.contains("DO UPDATE SET \"select\" = EXCLUDED.\"select\""),
            "{sql}"
        );
        assert!(
            sql.contains("ROW(t.\"select\")::text IS DISTINCT FROM ROW(EXCLUDED.\"select\")::text"),
            "{sql}"
        );
        assert!(!sql.contains("_migrated_at"), "{sql}");
        assert!(!t.upsert_sql("w", false).contains("DISTINCT ON"));
    }

    #[test]
    fn jsonb_tables_key_on_id_and_touch_migrated_at() {
        let t = TargetTable::new(&table(&["a"], &["a"]), "public", Mode::Jsonb).unwrap();
        assert_eq!(t.columns, ["\"id\"", "\"data\"", "\"_source_type\""]);
        let sql = t.upsert_sql("w", true);
        assert!(sql.contains("ON CONFLICT (\"id\")"), "{sql}");
        assert!(sql.contains("\"_migrated_at\" = now()"), "{sql}");
    }

    #[test]
    fn key_only_and_keyless_tables() {
        let t = TargetTable::new(&table(&["id"], &["id"]), "s", Mode::Native).unwrap();
        assert!(t.upsert_sql("w", true).contains("DO NOTHING"));
        let t = TargetTable::new(&table(&["a", "b"], &[]), "s", Mode::Native).unwrap();
        assert!(!t.keyed());
        assert!(t.insert_all_sql("w").ends_with("ORDER BY \"_seren_ord\""));
    }
}
