//! PostgreSQL as a source: every reader copies under one exported snapshot, so all tables and
//! all partitions are read as of one instant, and rows pass through as raw COPY rows (no
//! parsing, no conversion: the target has the same types).

use crate::catalog::{self, PgTable};
use crate::conn::{query_error, PgTarget};
use crate::ddl::quote_literal;
use arrow_array::RecordBatch;
use futures::StreamExt;
use pipeline::raw::{raw_schema, CopyFormat, RowSplitter};
use pipeline::{
    BatchStream, ColumnInfo, Error, ErrorKind, Partition, Result, Side, Source, TableInfo,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use tokio_postgres::Client;

/// Bytes of COPY rows gathered into one batch.
const BATCH_BYTES: usize = 1 << 20;

/// A block range of a table's heap: `from_block` inclusive, `to_block` exclusive (open-ended
/// when `None`, so rows added after planning are still read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRange {
    /// First block.
    pub from_block: u64,
    /// Block after the last one, or none for "to the end".
    pub to_block: Option<u64>,
}

/// How a source transaction sees the data.
enum Snapshot {
    /// We exported it and hold the exporting transaction open until dropped.
    Exported { name: String, _holder: Client },
    /// Exported elsewhere (e.g. by a replication slot); the exporter keeps it alive.
    Imported(String),
}

/// A PostgreSQL database read under one snapshot.
pub struct PgSource {
    server: PgTarget,
    snapshot: Snapshot,
    catalog: Client,
    tables: Mutex<HashMap<String, PgTable>>,
    tid_range_scans: bool,
}

impl PgSource {
    /// Connect to `server`, export a snapshot (or use `snapshot`, already exported by a session
    /// that stays open), and read the catalog under it.
    pub async fn open(server: PgTarget, snapshot: Option<String>) -> Result<PgSource> {
        let snapshot = match snapshot {
            Some(name) => Snapshot::Imported(name),
            None => Self::export(&server, None).await?,
        };
        Self::under(server, snapshot).await
    }

    /// Join a snapshot another process exported: import it into a session this source holds
    /// open and export it again from there, so its readers keep it after that process ends.
    pub async fn join(server: PgTarget, snapshot: &str) -> Result<PgSource> {
        let snapshot = Self::export(&server, Some(snapshot)).await?;
        Self::under(server, snapshot).await
    }

    /// A snapshot exported by a new session held open: of now, or the imported `import`.
    async fn export(server: &PgTarget, import: Option<&str>) -> Result<Snapshot> {
        let holder = server.connect().await?;
        let import = import
            .map(|name| format!("SET TRANSACTION SNAPSHOT {};", quote_literal(name)))
            .unwrap_or_default();
        let row = holder
            .simple_query(&format!(
                "SET idle_in_transaction_session_timeout = 0; \
                 BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; {import} \
                 SELECT pg_export_snapshot()"
            ))
            .await
            .map_err(|e| query_error(Side::Source, "exporting a snapshot", e))?;
        let name = row
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                _ => None,
            })
            .ok_or_else(|| {
                Error::new(ErrorKind::Query, Side::Source, "no snapshot was exported")
            })?;
        Ok(Snapshot::Exported {
            name,
            _holder: holder,
        })
    }

    /// Whether snapshot `name` can still be imported (the session exporting it is open).
    pub async fn snapshot_alive(server: &PgTarget, name: &str) -> Result<bool> {
        let client = server.connect().await?;
        let sql = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(name)
        );
        match client.batch_execute(&sql).await {
            Ok(()) => Ok(true),
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE) =>
            {
                Ok(false)
            }
            Err(e) => Err(query_error(Side::Source, "checking a worker's snapshot", e)),
        }
    }

    /// Read the catalog under `snapshot`.
    async fn under(server: PgTarget, snapshot: Snapshot) -> Result<PgSource> {
        let source = PgSource {
            catalog: server.connect().await?,
            server,
            snapshot,
            tables: Mutex::new(HashMap::new()),
            tid_range_scans: false,
        };
        source.begin(&source.catalog).await?;
        let major = catalog::server_major(&source.catalog, Side::Source).await?;
        Ok(PgSource {
            tid_range_scans: major >= 14,
            ..source
        })
    }

    /// The exported snapshot every reader uses (for `pg_dump --snapshot`).
    pub fn snapshot(&self) -> &str {
        match &self.snapshot {
            Snapshot::Exported { name, .. } | Snapshot::Imported(name) => name,
        }
    }

    /// A connection whose transaction sees the run's snapshot (for catalog reads).
    pub fn catalog(&self) -> &Client {
        &self.catalog
    }

    /// The server.
    pub fn server(&self) -> &PgTarget {
        &self.server
    }

    /// Fail, naming them and the GRANTs to run, when this user may not read some of `tables`
    /// (no SELECT on the table, or no USAGE on its schema): checked before anything is dumped
    /// or copied.
    pub async fn check_readable(&self, tables: &[PgTable]) -> Result<()> {
        let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
        let rows = self
            .catalog
            .query(
                "SELECT c.oid FROM pg_class c WHERE c.oid = ANY($1) \
                 AND NOT (has_schema_privilege(c.relnamespace, 'USAGE') \
                          AND has_table_privilege(c.oid, 'SELECT'))",
                &[&oids],
            )
            .await
            .map_err(|e| query_error(Side::Source, "checking read privileges", e))?;
        let denied: Vec<&PgTable> = rows
            .iter()
            .filter_map(|r| {
                let oid: u32 = r.get(0);
                tables.iter().find(|t| t.oid == oid)
            })
            .collect();
        if denied.is_empty() {
            return Ok(());
        }
        let user = crate::ddl::quote_ident(self.server.user());
        let names: Vec<String> = denied.iter().map(|t| t.display()).collect();
        let grants: Vec<String> = denied
            .iter()
            .map(|t| {
                format!(
                    "GRANT USAGE ON SCHEMA {} TO {user}; GRANT SELECT ON {} TO {user};",
                    crate::ddl::quote_ident(&t.schema),
                    t.sql_name()
                )
            })
            .collect();
        Err(Error::new(
            ErrorKind::Auth,
            Side::Source,
            format!(
                "source user {} cannot read {}; run as their owner: {} or leave them out with \
                 --exclude-tables",
                self.server.user(),
                names.join(", "),
                grants.join(" ")
            ),
        ))
    }

    /// Read every table from the catalog (under the snapshot) and remember them for `open`.
    pub async fn load_tables(&self) -> Result<Vec<PgTable>> {
        let tables = catalog::tables(&self.catalog).await?;
        let mut map = self.tables.lock().unwrap();
        map.clear();
        for t in &tables {
            map.insert(t.display(), t.clone());
        }
        Ok(tables)
    }

    /// The pipeline's description of a table.
    pub fn table_info(table: &PgTable) -> TableInfo {
        TableInfo {
            name: table.display(),
            schema: raw_schema(table.format),
            columns: table
                .columns
                .iter()
                .map(|c| ColumnInfo {
                    name: c.clone(),
                    source_type: String::new(),
                    nullable: true,
                })
                .collect(),
            primary_key: table.primary_key.clone(),
            hidden_columns: Vec::new(),
            unique_keys: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            rows: table.rows,
            rows_exact: false,
            bytes: table.bytes,
            warnings: Vec::new(),
            ..Default::default()
        }
    }

    /// Partitions of `table`: block ranges of about `split_bytes` each when the table is
    /// bigger than that (and the server has TID range scans, PostgreSQL 14+), else one; each
    /// reads only rows matching `filter` when given.
    pub fn partitions(
        &self,
        table: &PgTable,
        split_bytes: u64,
        filter: Option<&str>,
    ) -> Vec<Partition> {
        let parts = if split_bytes > 0 && table.bytes > split_bytes && self.tid_range_scans {
            table.bytes.div_ceil(split_bytes).min(table.blocks.max(1))
        } else {
            1
        };
        let per = table.blocks.div_ceil(parts).max(1);
        (0..parts)
            .map(|i| {
                let range = BlockRange {
                    from_block: i * per,
                    to_block: (i + 1 < parts).then_some((i + 1) * per),
                };
                let mut bounds = serde_json::to_value(range).expect("a block range serialises");
                if let Some(f) = filter {
                    bounds["filter"] = serde_json::Value::String(f.to_string());
                }
                Partition {
                    table: table.display(),
                    index: i as usize,
                    count: parts as usize,
                    description: match (parts, range.to_block) {
                        (1, _) => "whole table".into(),
                        (_, Some(to)) => format!("blocks {}..{to}", range.from_block),
                        (_, None) => format!("blocks {}..", range.from_block),
                    },
                    estimated_rows: table.rows / parts,
                    bounds,
                }
            })
            .collect()
    }

    /// Measure how fast this source streams `table` (bytes per second), reading up to about
    /// `budget` bytes of it: the basis of the plan's time estimate.
    pub async fn probe_read_rate(&self, table: &PgTable, budget: u64) -> Result<Option<f64>> {
        if table.rows == 0 || table.bytes == 0 || table.columns.is_empty() {
            return Ok(None);
        }
        let limit = (table.rows as f64 * budget as f64 / table.bytes as f64).ceil() as u64;
        let columns = table.column_list();
        let sql = format!(
            "COPY (SELECT {} FROM ONLY {} LIMIT {}) TO STDOUT (FORMAT {})",
            columns.trim_start_matches('(').trim_end_matches(')'),
            table.sql_name(),
            limit.max(1),
            table.format.sql()
        );
        let client = self.server.connect().await?;
        self.begin(&client).await?;
        let started = std::time::Instant::now();
        let mut stream = Box::pin(
            client
                .copy_out(&sql)
                .await
                .map_err(|e| query_error(Side::Source, "measuring the read rate", e))?,
        );
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            bytes += chunk
                .map_err(|e| query_error(Side::Source, "measuring the read rate", e))?
                .len() as u64;
        }
        let secs = started.elapsed().as_secs_f64();
        Ok((bytes > 0 && secs > 0.0).then(|| bytes as f64 / secs))
    }

    async fn begin(&self, client: &Client) -> Result<()> {
        let sql = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(self.snapshot())
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| query_error(Side::Source, "importing the run's snapshot", e))
    }

    fn copy_sql(table: &PgTable, partition: &Partition, filter: Option<&str>) -> Result<String> {
        let range: BlockRange = partition.bounds_as("postgres")?;
        let format = table.format.sql();
        let whole = partition.count == 1;
        if whole && filter.is_none() && !table.columns.is_empty() {
            return Ok(format!(
                "COPY {} {} TO STDOUT (FORMAT {format})",
                table.sql_name(),
                table.column_list()
            ));
        }
        let mut conditions = Vec::new();
        if !whole {
            conditions.push(format!("ctid >= '({},0)'::tid", range.from_block));
            if let Some(to) = range.to_block {
                conditions.push(format!("ctid < '({to},0)'::tid"));
            }
        }
        if let Some(f) = filter {
            conditions.push(format!("({f})"));
        }
        let columns = table.column_list();
        let select = columns.trim_start_matches('(').trim_end_matches(')');
        let mut sql = format!("SELECT {select} FROM ONLY {}", table.sql_name());
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        Ok(format!("COPY ({sql}) TO STDOUT (FORMAT {format})"))
    }

    fn table(&self, name: &str) -> Result<PgTable> {
        self.tables
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Schema,
                    Side::Source,
                    format!("table {name} is not in the source catalog"),
                )
            })
    }
}

/// Whether a source string names a PostgreSQL server (a URL, or a `key=value` conninfo).
pub fn is_postgres_location(location: &str) -> bool {
    let s = location.trim_start();
    s.starts_with("postgresql://")
        || s.starts_with("postgres://")
        || (!s.contains('/') && (s.contains("host=") || s.contains("dbname=")))
}

/// Opens PostgreSQL sources from the registry.
pub struct PgSourceFactory;

#[async_trait::async_trait]
impl pipeline::SourceFactory for PgSourceFactory {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn forms(&self) -> &'static [&'static str] {
        &[
            "postgresql://USER@HOST:PORT/DB",
            "postgres://…",
            "host=… dbname=…",
        ]
    }

    fn accepts(&self, location: &str) -> bool {
        is_postgres_location(location)
    }

    async fn open(
        &self,
        location: &str,
        _options: &pipeline::SourceOptions,
    ) -> Result<std::sync::Arc<dyn Source>> {
        let source = PgSource::open(PgTarget::parse(location, Side::Source)?, None).await?;
        source.load_tables().await?;
        Ok(std::sync::Arc::new(source))
    }
}

/// Read `stream` (a `COPY … TO STDOUT` on `client`) into batches of about `BATCH_BYTES` of
/// whole rows and send them to `tx`; stops at the first error (sent last) or when the receiver
/// is gone.
async fn gather_rows(
    client: Client,
    mut stream: Pin<Box<tokio_postgres::CopyOutStream>>,
    format: CopyFormat,
    what: String,
    tx: tokio::sync::mpsc::Sender<Result<RecordBatch>>,
) {
    let mut splitter = RowSplitter::new(format);
    let end = loop {
        match stream.next().await {
            Some(Ok(bytes)) => {
                if let Err(e) = splitter.push_message(&bytes) {
                    break Err(e);
                }
                if splitter.pending_bytes() >= BATCH_BYTES {
                    let batch = splitter.take_batch().expect("pending rows");
                    if tx.send(Ok(batch)).await.is_err() {
                        return; // the reader stopped; dropping the stream ends the COPY
                    }
                }
            }
            Some(Err(e)) => break Err(query_error(Side::Source, &what, e)),
            None => break splitter.finish().map(|()| splitter.take_batch()),
        }
    };
    let last = match end {
        Ok(None) => return,
        Ok(Some(batch)) => Ok(batch),
        Err(e) => Err(e),
    };
    let _ = tx.send(last).await;
    drop(client);
}

/// Row filter of a partition, carried in its bounds next to the block range.
#[derive(Deserialize)]
struct Filter {
    filter: Option<String>,
}

#[async_trait::async_trait]
impl Source for PgSource {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.server.display()
    }

    async fn list_tables(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.tables.lock().unwrap().keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    async fn describe(&self, table: &str) -> Result<TableInfo> {
        Ok(Self::table_info(&self.table(table)?))
    }

    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>> {
        Ok(self.partitions(&self.table(&table.name)?, 0, filter))
    }

    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
        let t = self.table(&table.name)?;
        let filter: Filter =
            serde_json::from_value(partition.bounds.clone()).unwrap_or(Filter { filter: None });
        let sql = Self::copy_sql(&t, partition, filter.filter.as_deref())?;
        let client = self.server.connect().await?;
        self.begin(&client).await?;
        let what = format!("reading {} ({})", t.display(), partition.description);
        let stream = client
            .copy_out(&sql)
            .await
            .map_err(|e| query_error(Side::Source, &what, e))?;
        // Rows are gathered into batches by a task beside the connection's own task: the
        // connection hands over every network read (~8 KB), and waking the pipeline's reader
        // thread that often cost more CPU than the copy itself (measured: 350k futex calls per
        // 1.4 GB); the reader thread is now woken once per batch.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(gather_rows(client, Box::pin(stream), t.format, what, tx));
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        })
        .boxed())
    }

    /// The server version (12 or later) and SELECT on every selected table.
    async fn preflight(&self, tables: &[TableInfo]) -> Vec<pipeline::Check> {
        use pipeline::Check;
        let version = match catalog::server_major(&self.catalog, Side::Source).await {
            Ok(v) if v >= 12 => Ok(format!("PostgreSQL {v}")),
            Ok(v) => Err(format!(
                "PostgreSQL {v} is too old: version 12 or later is required"
            )),
            Err(e) => Err(e.to_string()),
        };
        let mut out = vec![Check::new("source version", version)];
        let mut denied = Vec::new();
        for info in tables {
            let Ok(t) = self.table(&info.name) else {
                continue;
            };
            let qualified = crate::ddl::qualified(&t.schema, &t.name);
            let r = self
                .catalog
                .query_one(
                    "SELECT has_schema_privilege(c.relnamespace, 'USAGE') \
                            AND has_table_privilege(c.oid, 'SELECT') \
                     FROM pg_class c WHERE c.oid = $1",
                    &[&t.oid],
                )
                .await;
            match r {
                Ok(r) if r.get::<_, bool>(0) => {}
                Ok(_) => denied.push(Check::new(
                    format!("source read table {}", info.name),
                    Err(format!(
                        "user {user} cannot read {qualified}; run: GRANT USAGE ON SCHEMA \
                         {schema} TO {user}; GRANT SELECT ON {qualified} TO {user};",
                        user = crate::ddl::quote_ident(self.server.user()),
                        schema = crate::ddl::quote_ident(&t.schema),
                    )),
                )),
                Err(e) => denied.push(Check::new(
                    format!("source read table {}", info.name),
                    Err(query_error(Side::Source, "checking privileges", e).to_string()),
                )),
            }
        }
        if denied.is_empty() {
            out.push(Check::new(
                "source read privileges",
                Ok(format!(
                    "user {} can read {} table(s)",
                    self.server.user(),
                    tables.len()
                )),
            ));
        }
        out.extend(denied);
        out
    }
}
