//! What a PostgreSQL source holds: its tables (with the COPY format each needs), sequences,
//! foreign keys and large objects, read from the system catalogs.

use crate::conn::query_error;
use crate::ddl::quote_ident;
use pipeline::raw::CopyFormat;
use pipeline::{Result, Side};
use std::collections::HashSet;
use tokio_postgres::Client;

/// Schemas never copied: PostgreSQL's own, and this tool's resume state.
pub const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", STATE_SCHEMA];
/// Schema holding a run's resume state in the target database.
pub const STATE_SCHEMA: &str = "seren_replicator";

/// One source table.
#[derive(Debug, Clone)]
pub struct PgTable {
    /// The table's OID in the source.
    pub oid: u32,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// `r` (plain table or leaf partition) or `p` (partitioned table: schema only, no rows).
    pub relkind: char,
    /// The root of its partition tree, when it is a partition.
    pub partition_root: Option<(String, String)>,
    /// Columns that COPY carries (generated and dropped columns excluded), in order.
    pub columns: Vec<String>,
    /// Primary key columns.
    pub primary_key: Vec<String>,
    /// Binary unless a column's binary form embeds server-specific OIDs (arrays of user types,
    /// composites) or its type has no binary I/O.
    pub format: CopyFormat,
    /// Heap size in bytes.
    pub bytes: u64,
    /// Heap size in blocks.
    pub blocks: u64,
    /// Estimated rows (planner statistics).
    pub rows: u64,
}

impl PgTable {
    /// `schema.name`, each part quoted only where needed: the table's name in messages and
    /// in the pipeline.
    pub fn display(&self) -> String {
        display_name(&self.schema, &self.name)
    }

    /// `"schema"."name"` for SQL.
    pub fn sql_name(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// The quoted column list for COPY: `("a", "b")`.
    pub fn column_list(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        format!("({})", cols.join(", "))
    }
}

/// `schema.name` with each part double-quoted only when it is not a plain lower-case
/// identifier.
pub fn display_name(schema: &str, name: &str) -> String {
    format!("{}.{}", display_ident(schema), display_ident(name))
}

fn display_ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        s.to_string()
    } else {
        quote_ident(s)
    }
}

/// Every user table of the database (plain, partitioned, leaf partitions, inheritance
/// children, unlogged), excluding system schemas, temporary tables and extension members.
pub async fn tables(client: &Client) -> Result<Vec<PgTable>> {
    let rows = client
        .query(
            "WITH RECURSIVE roots(relid, root) AS (
                 SELECT c.oid, c.oid FROM pg_class c WHERE NOT c.relispartition
                 UNION ALL
                 SELECT i.inhrelid, r.root FROM roots r JOIN pg_inherits i ON i.inhparent = r.relid
                   JOIN pg_class ch ON ch.oid = i.inhrelid AND ch.relispartition)
             SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relispartition,
                    rn.nspname AS root_schema, rc.relname AS root_name,
                    pg_relation_size(c.oid) AS bytes,
                    GREATEST(c.reltuples, 0)::float8 AS rows,
                    current_setting('block_size')::int AS block_size
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN roots ro ON ro.relid = c.oid AND c.relispartition
             LEFT JOIN pg_class rc ON rc.oid = ro.root
             LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
               AND n.nspname <> ALL ($1) AND n.nspname NOT LIKE 'pg\\_%'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype = 'e')
             ORDER BY n.nspname, c.relname",
            &[&SYSTEM_SCHEMAS],
        )
        .await
        .map_err(|e| query_error(Side::Source, "listing tables", e))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let oid: u32 = r.get(0);
        let relkind: String = r.get(3);
        let is_partition: bool = r.get(4);
        let bytes = r.get::<_, i64>(7).max(0) as u64;
        let block_size = r.get::<_, i32>(9).max(1) as u64;
        let (columns, format) = columns(client, oid).await?;
        out.push(PgTable {
            oid,
            schema: r.get(1),
            name: r.get(2),
            relkind: relkind.chars().next().unwrap_or('r'),
            partition_root: is_partition.then(|| (r.get(5), r.get(6))),
            columns,
            primary_key: primary_key(client, oid).await?,
            format,
            bytes,
            blocks: bytes / block_size,
            rows: r.get::<_, f64>(8) as u64,
        });
    }
    Ok(out)
}

/// The copyable columns of a table and the COPY format they allow.
async fn columns(client: &Client, oid: u32) -> Result<(Vec<String>, CopyFormat)> {
    // Follow domains to their base types, then check each base type: binary COPY carries
    // element-type OIDs in arrays and field-type OIDs in composites, which differ between
    // servers for user-defined types, so those columns (and types without binary I/O) need text.
    let rows = client
        .query(
            "WITH RECURSIVE cols AS (
                 SELECT a.attnum, a.attname, a.atttypid AS typ
                 FROM pg_attribute a
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attgenerated = ''),
             base(attnum, typ) AS (
                 SELECT attnum, typ FROM cols
                 UNION ALL
                 SELECT b.attnum, t.typbasetype FROM base b JOIN pg_type t ON t.oid = b.typ
                 WHERE t.typtype = 'd')
             SELECT c.attname,
                    bool_and(t.typtype = 'd' OR (
                        t.typsend <> 0 AND t.typreceive <> 0 AND t.typtype <> 'c'
                        AND NOT (t.typelem <> 0 AND t.typlen = -1 AND t.typelem >= 16384)
                        AND NOT (t.typelem <> 0 AND t.typlen = -1 AND EXISTS (
                            SELECT 1 FROM pg_type e WHERE e.oid = t.typelem
                            AND e.typtype IN ('c', 'd', 'e')))))
             FROM cols c JOIN base b ON b.attnum = c.attnum JOIN pg_type t ON t.oid = b.typ
             GROUP BY c.attnum, c.attname ORDER BY c.attnum",
            &[&oid],
        )
        .await
        .map_err(|e| query_error(Side::Source, "reading columns", e))?;
    let binary = rows.iter().all(|r| r.get::<_, bool>(1));
    let names = rows.iter().map(|r| r.get(0)).collect();
    Ok((
        names,
        if binary {
            CopyFormat::Binary
        } else {
            CopyFormat::Text
        },
    ))
}

async fn primary_key(client: &Client, oid: u32) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT a.attname FROM pg_index i
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord",
            &[&oid],
        )
        .await
        .map_err(|e| query_error(Side::Source, "reading primary keys", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A foreign key between two tables: `(referencing schema, table)` → `(referenced schema, table)`.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    /// The table holding the constraint.
    pub from: (String, String),
    /// The table it references.
    pub to: (String, String),
    /// Constraint name.
    pub name: String,
}

/// Every foreign key between user tables.
pub async fn foreign_keys(client: &Client) -> Result<Vec<ForeignKey>> {
    let rows = client
        .query(
            "SELECT fn.nspname, f.relname, tn.nspname, t.relname, c.conname
             FROM pg_constraint c
             JOIN pg_class f ON f.oid = c.conrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
             JOIN pg_class t ON t.oid = c.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
             WHERE c.contype = 'f' AND c.conparentid = 0",
            &[],
        )
        .await
        .map_err(|e| query_error(Side::Source, "reading foreign keys", e))?;
    Ok(rows
        .iter()
        .map(|r| ForeignKey {
            from: (r.get(0), r.get(1)),
            to: (r.get(2), r.get(3)),
            name: r.get(4),
        })
        .collect())
}

/// A primary-key or unique constraint of a table, with its index's definition.
#[derive(Debug, Clone)]
pub struct KeyConstraint {
    /// Constraint name.
    pub name: String,
    /// `CREATE UNIQUE INDEX …` as the source would build it.
    pub index_sql: String,
    /// `ALTER TABLE ONLY … ADD CONSTRAINT … USING INDEX …` (with its deferrability).
    pub attach_sql: String,
}

/// The primary-key and unique constraints of the table with OID `table`.
pub async fn key_constraints(client: &Client, table: &PgTable) -> Result<Vec<KeyConstraint>> {
    let rows = client
        .query(
            "SELECT c.conname, pg_get_indexdef(c.conindid), c.contype::text, i.relname,
                    c.condeferrable, c.condeferred
             FROM pg_constraint c JOIN pg_class i ON i.oid = c.conindid
             WHERE c.conrelid = $1 AND c.contype IN ('p', 'u')",
            &[&table.oid],
        )
        .await
        .map_err(|e| query_error(Side::Source, "reading key constraints", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let (name, index_sql, kind, index): (String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let mut attach = format!(
                "ALTER TABLE ONLY {} ADD CONSTRAINT {} {} USING INDEX {}",
                table.sql_name(),
                quote_ident(&name),
                if kind == "p" { "PRIMARY KEY" } else { "UNIQUE" },
                quote_ident(&index)
            );
            if r.get::<_, bool>(4) {
                attach.push_str(" DEFERRABLE");
                if r.get::<_, bool>(5) {
                    attach.push_str(" INITIALLY DEFERRED");
                }
            }
            KeyConstraint {
                name,
                index_sql: format!("{index_sql};"),
                attach_sql: format!("{attach};"),
            }
        })
        .collect())
}

/// OIDs of the tables that have an index on an expression (ANALYZE gathers statistics for
/// such expressions only once the index exists).
pub async fn tables_with_expression_indexes(client: &Client) -> Result<HashSet<u32>> {
    Ok(client
        .query(
            "SELECT DISTINCT indrelid FROM pg_index WHERE indexprs IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| query_error(Side::Source, "reading expression indexes", e))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// A sequence and its state.
#[derive(Debug, Clone)]
pub struct SequenceValue {
    /// Schema name.
    pub schema: String,
    /// Sequence name.
    pub name: String,
    /// `last_value`.
    pub last_value: i64,
    /// `is_called` (whether `last_value` was already handed out).
    pub is_called: bool,
}

/// The current value of every user sequence.
pub async fn sequences(client: &Client) -> Result<Vec<SequenceValue>> {
    let names = client
        .query(
            "SELECT n.nspname, c.relname FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'S' AND n.nspname <> ALL ($1) AND n.nspname NOT LIKE 'pg\\_%'
             ORDER BY 1, 2",
            &[&SYSTEM_SCHEMAS],
        )
        .await
        .map_err(|e| query_error(Side::Source, "listing sequences", e))?;
    let mut out = Vec::with_capacity(names.len());
    for r in names {
        let (schema, name): (String, String) = (r.get(0), r.get(1));
        let sql = format!(
            "SELECT last_value, is_called FROM {}.{}",
            quote_ident(&schema),
            quote_ident(&name)
        );
        let row = client
            .query_one(&sql, &[])
            .await
            .map_err(|e| query_error(Side::Source, &format!("reading sequence {name}"), e))?;
        out.push(SequenceValue {
            schema,
            name,
            last_value: row.get(0),
            is_called: row.get(1),
        });
    }
    Ok(out)
}

/// Materialized views holding data in the source, as quoted `"schema"."name"`, oldest first.
pub async fn populated_materialized_views(client: &Client) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT n.nspname, c.relname FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'm' AND c.relispopulated
               AND n.nspname <> ALL ($1) AND n.nspname NOT LIKE 'pg\\_%'
             ORDER BY c.oid",
            &[&SYSTEM_SCHEMAS],
        )
        .await
        .map_err(|e| query_error(Side::Source, "listing materialized views", e))?;
    Ok(rows
        .iter()
        .map(|r| format!("{}.{}", quote_ident(r.get(0)), quote_ident(r.get(1))))
        .collect())
}

/// OIDs of every large object.
pub async fn large_objects(client: &Client) -> Result<Vec<u32>> {
    let rows = client
        .query("SELECT oid FROM pg_largeobject_metadata ORDER BY oid", &[])
        .await
        .map_err(|e| query_error(Side::Source, "listing large objects", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The server's major version (e.g. 15).
pub async fn server_major(client: &Client, side: Side) -> Result<u32> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| query_error(side, "reading the server version", e))?;
    Ok((row.get::<_, i32>(0) / 10000) as u32)
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn names_are_quoted_only_when_needed() {
        assert_eq!(display_name("public", "orders"), "public.orders");
        assert_eq!(display_name("public", "My Table"), "public.\"My Table\"");
        assert_eq!(display_name("Sales", "a\"b"), "\"Sales\".\"a\"\"b\"");
    }
}

/// A column a time window can filter on: `timestamp`, `timestamptz` or `date`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeColumn {
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// Its type as PostgreSQL names it (`timestamp with time zone`, `date`, …).
    pub type_name: String,
}

/// Every `timestamp`, `timestamptz` and `date` column of the user tables, in table order: the
/// candidates for a `--time-filter`.
pub async fn time_columns(client: &Client) -> Result<Vec<TimeColumn>> {
    let rows = client
        .query(
            "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND NOT c.relispartition
               AND a.attnum > 0 AND NOT a.attisdropped
               AND a.atttypid IN ('timestamp'::regtype, 'timestamptz'::regtype, 'date'::regtype)
               AND n.nspname <> ALL ($1) AND n.nspname NOT LIKE 'pg\\_%'
             ORDER BY n.nspname, c.relname, a.attnum",
            &[&SYSTEM_SCHEMAS],
        )
        .await
        .map_err(|e| query_error(Side::Source, "listing timestamp columns", e))?;
    Ok(rows
        .iter()
        .map(|r| TimeColumn {
            schema: r.get(0),
            table: r.get(1),
            column: r.get(2),
            type_name: r.get(3),
        })
        .collect())
}
