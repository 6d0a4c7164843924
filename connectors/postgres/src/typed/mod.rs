//! PostgreSQL as a typed Arrow source, for destinations that need values rather than raw COPY
//! rows (`export` to Parquet). Every reader copies under the one snapshot [`PgSource`] exports,
//! in binary COPY, and decodes each column to Arrow by its catalog type (the map is in
//! `decode`). Columns of other types are read as text (`column::text`) and the table carries a
//! warning naming them.
//!
//! Tables in schema `public` are named by their bare name (`users`), others `schema.table`.

mod copy;
mod decode;

use crate::catalog::PgTable;
use crate::conn::{query_error, PgTarget};
use crate::ddl::{quote_ident, quote_literal};
use crate::source::{BlockRange, PgSource};
use copy::{CopyDecoder, Plan};
use decode::Kind;
use futures::StreamExt;
use pipeline::{
    BatchStream, ColumnInfo, Error, ErrorKind, Partition, Result, Side, Source, SourceOptions,
    TableInfo,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Tables bigger than this are split into block ranges read in parallel.
const SPLIT_BYTES: u64 = 256 << 20;

/// A PostgreSQL database read as typed Arrow batches under one snapshot.
pub struct TypedPgSource {
    inner: PgSource,
    options: SourceOptions,
    tables: BTreeMap<String, TypedTable>,
}

/// One table: the raw source's description, how each column is read, and the pipeline's.
struct TypedTable {
    pg: PgTable,
    /// Per column: its kind, or `None` when it is read as text.
    kinds: Vec<Option<Kind>>,
    info: TableInfo,
}

impl TypedPgSource {
    /// Connect to `server`, export a snapshot and read the catalog and column types under it.
    pub async fn open(server: PgTarget, options: SourceOptions) -> Result<TypedPgSource> {
        let inner = PgSource::open(server, None).await?;
        let mut tables = BTreeMap::new();
        for pg in inner.load_tables().await? {
            if pg.relkind != 'r' {
                continue; // partitioned parents hold no rows; their leaves are read
            }
            let table = TypedTable::load(inner.catalog(), pg).await?;
            tables.insert(table.info.name.clone(), table);
        }
        Ok(TypedPgSource {
            inner,
            options,
            tables,
        })
    }

    fn table(&self, name: &str) -> Result<&TypedTable> {
        self.tables.get(name).ok_or_else(|| {
            Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!("table {name} is not in the source catalog"),
            )
        })
    }
}

/// The column types query: base types of domains, array element types and type modifiers.
const COLUMN_TYPES: &str = "\
SELECT a.attname, \
       CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END AS type_oid, \
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod, \
       CASE WHEN b.typcategory = 'A' THEN b.typelem ELSE 0::oid END AS element_oid, \
       format_type(a.atttypid, a.atttypmod) AS declared, \
       a.attnotnull \
FROM pg_attribute a \
JOIN pg_type t ON t.oid = a.atttypid \
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END \
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped";

impl TypedTable {
    async fn load(client: &tokio_postgres::Client, pg: PgTable) -> Result<TypedTable> {
        let name = if pg.schema == "public" {
            pg.name.clone()
        } else {
            pg.display()
        };
        let rows = client
            .query(COLUMN_TYPES, &[&pg.oid])
            .await
            .map_err(|e| query_error(Side::Source, &format!("reading the columns of {name}"), e))?;
        let mut by_name = BTreeMap::new();
        for row in rows {
            let column: String = row.get(0);
            let (oid, typmod, element): (u32, i32, u32) = (row.get(1), row.get(2), row.get(3));
            let kind = if element != 0 {
                Kind::of_scalar(element, typmod).map(|k| Kind::Array(Box::new(k)))
            } else {
                Kind::of_scalar(oid, typmod)
            };
            by_name.insert(
                column,
                (kind, row.get::<_, String>(4), row.get::<_, bool>(5)),
            );
        }
        let (mut kinds, mut fields, mut columns, mut as_text) = (vec![], vec![], vec![], vec![]);
        for column in &pg.columns {
            let (kind, declared, not_null) = by_name.remove(column).ok_or_else(|| {
                Error::new(
                    ErrorKind::Schema,
                    Side::Source,
                    format!("table {name}: column {column} is missing from pg_attribute"),
                )
            })?;
            let field = match &kind {
                Some(k) => k.field(column, !not_null),
                None => {
                    as_text.push(format!("{column} ({declared})"));
                    Kind::Text.field(column, !not_null)
                }
            };
            fields.push(field);
            kinds.push(kind);
            columns.push(ColumnInfo {
                name: column.clone(),
                source_type: declared,
                nullable: !not_null,
            });
        }
        let mut warnings = Vec::new();
        if !as_text.is_empty() {
            warnings.push(format!(
                "columns of types without an Arrow mapping are exported as text: {}",
                as_text.join(", ")
            ));
        }
        let info = TableInfo {
            name,
            schema: Arc::new(arrow_schema::Schema::new(fields)),
            columns,
            primary_key: pg.primary_key.clone(),
            rows: pg.rows,
            bytes: pg.bytes,
            warnings,
            ..Default::default()
        };
        Ok(TypedTable { pg, kinds, info })
    }

    /// `COPY (SELECT …) TO STDOUT (FORMAT binary)` for one partition.
    fn copy_sql(&self, partition: &Partition) -> Result<String> {
        let range: BlockRange = partition.bounds_as("postgres")?;
        let filter = partition.bounds.get("filter").and_then(|f| f.as_str());
        let select: Vec<String> = self
            .pg
            .columns
            .iter()
            .zip(&self.kinds)
            .map(|(c, k)| match k {
                Some(_) => quote_ident(c),
                None => format!("{}::text AS {}", quote_ident(c), quote_ident(c)),
            })
            .collect();
        let mut conditions = Vec::new();
        if partition.count > 1 {
            conditions.push(format!("ctid >= '({},0)'::tid", range.from_block));
            if let Some(to) = range.to_block {
                conditions.push(format!("ctid < '({to},0)'::tid"));
            }
        }
        if let Some(f) = filter {
            conditions.push(format!("({f})"));
        }
        let mut sql = format!(
            "SELECT {} FROM ONLY {}",
            if select.is_empty() {
                String::new()
            } else {
                select.join(", ")
            },
            self.pg.sql_name()
        );
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        Ok(format!("COPY ({sql}) TO STDOUT (FORMAT binary)"))
    }
}

#[async_trait::async_trait]
impl Source for TypedPgSource {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.inner.server().display()
    }

    async fn list_tables(&self) -> Result<Vec<String>> {
        Ok(self.tables.keys().cloned().collect())
    }

    async fn describe(&self, table: &str) -> Result<TableInfo> {
        Ok(self.table(table)?.info.clone())
    }

    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>> {
        let t = self.table(&table.name)?;
        let mut parts = self.inner.partitions(&t.pg, SPLIT_BYTES, filter);
        for p in &mut parts {
            p.table = t.info.name.clone();
        }
        Ok(parts)
    }

    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
        let t = self.table(&table.name)?;
        let sql = t.copy_sql(partition)?;
        let client = self.inner.server().connect().await?;
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
                quote_literal(self.inner.snapshot())
            ))
            .await
            .map_err(|e| query_error(Side::Source, "importing the run's snapshot", e))?;
        let what = format!("reading {} ({})", t.info.name, partition.description);
        let stream = client
            .copy_out(&sql)
            .await
            .map_err(|e| query_error(Side::Source, &what, e))?;
        let plan = Plan {
            table: t.info.name.clone(),
            schema: t.info.schema.clone(),
            kinds: t
                .kinds
                .iter()
                .map(|k| k.clone().unwrap_or(Kind::Text))
                .collect(),
            batch_rows: self.options.batch_rows,
            batch_bytes: self.options.batch_bytes,
        };
        let state = (
            Box::pin(stream),
            CopyDecoder::new(plan),
            client,
            what,
            false,
        );
        Ok(futures::stream::unfold(
            state,
            |(mut stream, mut decoder, client, what, done)| async move {
                if done {
                    return None;
                }
                loop {
                    if let Some(batch) = decoder.full_batch() {
                        return Some((batch, (stream, decoder, client, what, false)));
                    }
                    match stream.next().await {
                        Some(Ok(bytes)) => {
                            if let Err(e) = decoder.push(&bytes) {
                                return Some((Err(e), (stream, decoder, client, what, true)));
                            }
                        }
                        Some(Err(e)) => {
                            let e = query_error(Side::Source, &what, e);
                            return Some((Err(e), (stream, decoder, client, what, true)));
                        }
                        None => {
                            return decoder
                                .finish()
                                .map(|batch| (batch, (stream, decoder, client, what, true)));
                        }
                    }
                }
            },
        )
        .boxed())
    }
}
