//! The PostgreSQL sink: each table is loaded into a staging table with binary COPY (one COPY per
//! partition, committed on its own), indexed after the load, then swapped into place in one
//! transaction. A failed or interrupted run therefore never leaves an empty or half-filled table
//! under the real name.

use crate::conn::{query_error, PgTarget};
use crate::ddl::quote_literal;
use crate::ddl::{check_ident, column_list, derived_name, layout, qualified, quote_ident, Layout};
use bytes::Bytes;
use futures::{SinkExt, StreamExt, TryStreamExt};
use pipeline::encode::{JsonbEncoder, NativeEncoder, COPY_HEADER, COPY_TRAILER};
use pipeline::{
    BatchEncoder, Chunk, Error, ErrorKind, Mode, Partition, PartitionWriter, Result, Side, Sink,
    TableInfo,
};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio_postgres::{Client, CopyInSink};

/// Index builds of one table run at once on their own connections (JSONB mode has three).
const INDEX_BUILDS_AT_ONCE: usize = 3;

/// How the sink lays out and replaces tables.
#[derive(Debug, Clone)]
pub struct PgSinkOptions {
    /// JSONB (the spec's layout) or native typed columns.
    pub mode: Mode,
    /// Target schema, created if missing.
    pub schema: String,
    /// Replace tables that already exist (atomically, after the new copy is complete).
    pub drop_existing: bool,
    /// Source connector name, stored in `_source_type` in JSONB mode.
    pub source_type: String,
    /// The GIN index built on `data` in JSONB mode.
    pub gin_index: GinIndex,
}

/// Which GIN index JSONB mode builds on `data`. Building it is the most expensive step of a
/// JSONB load (bench/RESULTS.md), so it can be narrowed or skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GinIndex {
    /// `jsonb_ops`: serves `@>`, `?`, `?|`, `?&`, `@?` and `@@` (the spec's layout).
    #[default]
    Full,
    /// `jsonb_path_ops`: smaller and faster to build; serves `@>`, `@?` and `@@` only.
    Path,
    /// No GIN index.
    None,
}

impl GinIndex {
    /// The operator-class suffix for `CREATE INDEX`, or `None` for no index.
    fn opclass(self) -> Option<&'static str> {
        match self {
            GinIndex::Full => Some(""),
            GinIndex::Path => Some(" jsonb_path_ops"),
            GinIndex::None => None,
        }
    }
}

impl std::str::FromStr for GinIndex {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(GinIndex::Full),
            "path" => Ok(GinIndex::Path),
            "none" => Ok(GinIndex::None),
            other => Err(format!(
                "unknown GIN index `{other}`: use `full`, `path` or `none`"
            )),
        }
    }
}

struct Staged {
    stage: String,
    layout: Layout,
}

/// Writes tables into a PostgreSQL database.
pub struct PgSink {
    target: PgTarget,
    opts: PgSinkOptions,
    run_id: String,
    staged: Mutex<HashMap<String, Staged>>,
    warnings: Mutex<Vec<String>>,
}

impl PgSink {
    /// A sink writing to `target`; nothing is touched until `prepare`.
    pub fn new(target: PgTarget, opts: PgSinkOptions) -> Self {
        let run_id = format!("{:08x}", rand_u32());
        PgSink {
            target,
            opts,
            run_id,
            staged: Mutex::new(HashMap::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// Things the user should know that did not stop the run (e.g. unvalidated foreign keys).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().unwrap().clone()
    }

    fn warn(&self, message: String) {
        tracing::warn!("{message}");
        self.warnings.lock().unwrap().push(message);
    }

    fn target_name(&self, table: &str) -> String {
        qualified(&self.opts.schema, table)
    }

    fn staged(&self, table: &str) -> Result<(String, Vec<String>)> {
        let staged = self.staged.lock().unwrap();
        let s = staged.get(table).ok_or_else(|| {
            Error::new(
                ErrorKind::Schema,
                Side::Local,
                format!("table \"{table}\" was not prepared"),
            )
        })?;
        Ok((s.stage.clone(), s.layout.copy_columns.clone()))
    }

    async fn execute(&self, client: &Client, what: &str, sql: &str) -> Result<()> {
        client
            .batch_execute(sql)
            .await
            .map_err(|e| query_error(Side::Target, what, e))
    }

    /// Temporary names for the indexes built on a staging table, and their final names.
    fn index_plan(&self, table: &TableInfo, stage: &str) -> Vec<IndexPlan> {
        let t = &table.name;
        let tmp = |n: usize| derived_name(&[stage, &n.to_string()]);
        let mut plan = Vec::new();
        match self.opts.mode {
            Mode::Jsonb => {
                plan.push(IndexPlan::key(
                    tmp(0),
                    derived_name(&[t, "pkey"]),
                    "PRIMARY KEY",
                    "(\"id\")".into(),
                ));
                if let Some(opclass) = self.opts.gin_index.opclass() {
                    plan.push(IndexPlan::index(
                        tmp(1),
                        derived_name(&[t, "data", "gin"]),
                        &format!("USING gin (\"data\"{opclass})"),
                        false,
                    ));
                }
                plan.push(IndexPlan::index(
                    tmp(2),
                    derived_name(&[t, "migrated", "at", "idx"]),
                    "(\"_migrated_at\")",
                    false,
                ));
            }
            Mode::Native => {
                if !table.primary_key.is_empty() {
                    plan.push(IndexPlan::key(
                        tmp(0),
                        derived_name(&[t, "pkey"]),
                        "PRIMARY KEY",
                        format!("({})", column_list(&table.primary_key)),
                    ));
                }
                for (i, key) in table.unique_keys.iter().enumerate() {
                    let mut parts: Vec<&str> = vec![t];
                    parts.extend(key.iter().map(String::as_str));
                    parts.push("key");
                    plan.push(IndexPlan::key(
                        tmp(10 + i),
                        derived_name(&parts),
                        "UNIQUE",
                        format!("({})", column_list(key)),
                    ));
                }
                for (i, idx) in table.indexes.iter().enumerate() {
                    plan.push(IndexPlan::index(
                        tmp(1000 + i),
                        derived_name(&[t, &idx.name]),
                        &format!("({})", column_list(&idx.columns)),
                        idx.unique,
                    ));
                }
                // Value lists (MySQL ENUM): CHECK (col IN ('a', 'b')), NULL still allowed.
                for (i, check) in table.checks.iter().enumerate() {
                    let allowed: Vec<String> =
                        check.allowed.iter().map(|v| quote_literal(v)).collect();
                    plan.push(IndexPlan::check(
                        tmp(2000 + i),
                        derived_name(&[t, &check.column, "check"]),
                        &format!(
                            "CHECK ({} IN ({}))",
                            quote_ident(&check.column),
                            allowed.join(", ")
                        ),
                    ));
                }
            }
        }
        plan
    }
}

impl PgSink {
    /// Native mode: make the source's auto-numbered column an identity column continuing from
    /// the source's next value (integer columns only; others get a warning).
    async fn add_identity(&self, client: &Client, table: &TableInfo, staged: &str) -> Result<()> {
        let Some(auto) = table
            .auto_increment
            .as_ref()
            .filter(|_| self.opts.mode == Mode::Native)
        else {
            return Ok(());
        };
        let integer = table.schema.fields().iter().any(|f| {
            f.name() == &auto.column
                && matches!(
                    pipeline::PgType::for_field(f),
                    Some(pipeline::PgType::Int2 | pipeline::PgType::Int4 | pipeline::PgType::Int8)
                )
        });
        if !integer {
            self.warn(format!(
                "table \"{}\": auto-increment column \"{}\" is not an integer column in \
                 PostgreSQL, so it gets no identity; new rows need explicit values",
                table.name, auto.column
            ));
            return Ok(());
        }
        let column = quote_ident(&auto.column);
        let sql = format!(
            "ALTER TABLE {staged} ALTER COLUMN {column} SET NOT NULL, ALTER COLUMN {column} \
             ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {})",
            auto.next_value.max(1)
        );
        let what = format!(
            "making column \"{}\" of table \"{}\" an identity column",
            auto.column, table.name
        );
        self.execute(client, &what, &sql).await
    }
}

struct IndexPlan {
    temp: String,
    final_name: String,
    build: Build,
}

/// How an index or constraint of a staging table is built.
enum Build {
    /// `CREATE [UNIQUE] INDEX … ON <staging table> <definition>`.
    Index { unique: bool, definition: String },
    /// A primary key or unique constraint (`kind`) on `columns`: its unique index is built
    /// beside the other indexes, then attached with `ADD CONSTRAINT … USING INDEX`.
    Key { kind: &'static str, columns: String },
    /// `ADD CONSTRAINT … <definition>` (a CHECK), once the indexes are built.
    Check(String),
}

impl IndexPlan {
    fn key(temp: String, final_name: String, kind: &'static str, columns: String) -> Self {
        IndexPlan {
            temp,
            final_name,
            build: Build::Key { kind, columns },
        }
    }
    fn check(temp: String, final_name: String, definition: &str) -> Self {
        IndexPlan {
            temp,
            final_name,
            build: Build::Check(definition.into()),
        }
    }
    fn index(temp: String, final_name: String, definition: &str, unique: bool) -> Self {
        IndexPlan {
            temp,
            final_name,
            build: Build::Index {
                unique,
                definition: definition.into(),
            },
        }
    }

    /// Whether it ends up as a constraint (renamed with `RENAME CONSTRAINT`).
    fn is_constraint(&self) -> bool {
        !matches!(self.build, Build::Index { .. })
    }

    /// The `CREATE INDEX` that builds it, if it has an index.
    fn create_index(&self, staged: &str) -> Option<String> {
        let (unique, definition) = match &self.build {
            Build::Index { unique, definition } => (*unique, definition),
            Build::Key { columns, .. } => (true, columns),
            Build::Check(_) => return None,
        };
        Some(format!(
            "CREATE {}INDEX {} ON {staged} {definition}",
            if unique { "UNIQUE " } else { "" },
            quote_ident(&self.temp),
        ))
    }

    /// The `ALTER TABLE` that makes it a constraint once its index exists, if it is one.
    fn add_constraint(&self, staged: &str) -> Option<String> {
        let temp = quote_ident(&self.temp);
        match &self.build {
            Build::Index { .. } => None,
            Build::Key { kind, .. } => Some(format!(
                "ALTER TABLE {staged} ADD CONSTRAINT {temp} {kind} USING INDEX {temp}"
            )),
            Build::Check(definition) => Some(format!(
                "ALTER TABLE {staged} ADD CONSTRAINT {temp} {definition}"
            )),
        }
    }
}

/// Whether `schema` exists. (`CREATE SCHEMA IF NOT EXISTS` needs CREATE on the database even
/// when the schema exists, which a user with only schema privileges lacks.)
pub async fn schema_exists(client: &Client, schema: &str) -> Result<bool> {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .await
        .map(|r| r.get(0))
        .map_err(|e| query_error(Side::Target, "checking the target schema", e))
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}

#[async_trait::async_trait]
impl Sink for PgSink {
    async fn prepare(&self, tables: &[TableInfo]) -> Result<()> {
        let client = self.target.connect().await?;
        let schema = &self.opts.schema;
        check_ident("target schema", schema)?;
        let mut layouts = Vec::with_capacity(tables.len());
        for t in tables {
            check_ident("table", &t.name)?;
            layouts.push(layout(t, self.opts.mode, &self.opts.source_type)?);
        }
        let mut existing = Vec::new();
        for t in tables {
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2)",
                    &[schema, &t.name],
                )
                .await
                .map_err(|e| query_error(Side::Target, "checking for existing tables", e))?;
            if row.get::<_, bool>(0) {
                existing.push(self.target_name(&t.name));
            }
        }
        if !existing.is_empty() && !self.opts.drop_existing {
            return Err(Error::new(
                ErrorKind::Conflict,
                Side::Target,
                format!(
                    "target {} already has {}: {}; nothing was written. Rerun with --drop-existing \
                     to replace them (each is swapped in only once its new copy is complete), or \
                     pick another --target-schema",
                    self.target.display(),
                    if existing.len() == 1 { "this table" } else { "these tables" },
                    existing.join(", ")
                ),
            ));
        }
        let mut ddl = String::from("BEGIN;\n");
        if !schema_exists(&client, schema).await? {
            ddl.push_str(&format!("CREATE SCHEMA {};\n", quote_ident(schema)));
        }
        let mut staged = HashMap::new();
        for (i, (t, layout)) in tables.iter().zip(layouts).enumerate() {
            let stage = derived_name(&["_seren_stage", &self.run_id, &i.to_string()]);
            ddl.push_str(&format!(
                "CREATE TABLE {} ({});\n",
                qualified(schema, &stage),
                layout.definitions.join(", ")
            ));
            staged.insert(t.name.clone(), Staged { stage, layout });
        }
        ddl.push_str("COMMIT;");
        self.execute(
            &client,
            &format!("creating staging tables in schema \"{schema}\""),
            &ddl,
        )
        .await?;
        *self.staged.lock().unwrap() = staged;
        Ok(())
    }

    fn encoder(&self, table: &TableInfo) -> Result<Arc<dyn BatchEncoder>> {
        Ok(match self.opts.mode {
            Mode::Jsonb => Arc::new(JsonbEncoder::new(table, &self.opts.source_type)?),
            Mode::Native => Arc::new(NativeEncoder::new(table)?),
        })
    }

    async fn writer(
        &self,
        table: &TableInfo,
        partition: &Partition,
    ) -> Result<Box<dyn PartitionWriter>> {
        let (stage, columns) = self.staged(&table.name)?;
        let client = self.target.connect().await?;
        // Each partition commits synchronously (one WAL flush per COPY). `synchronous_commit =
        // off` was measured slower for bulk COPY: the WAL writer then flushes every megabyte.
        let what = format!(
            "COPY into table \"{}\" (partition {}/{})",
            table.name,
            partition.index + 1,
            partition.count
        );
        let sql = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            qualified(&self.opts.schema, &stage),
            columns.join(", ")
        );
        Ok(Box::new(PgWriter::start(client, &sql, what).await?))
    }

    async fn finish_table(&self, table: &TableInfo) -> Result<()> {
        let (stage, _) = self.staged(&table.name)?;
        let schema = &self.opts.schema;
        let client = self.target.connect().await?;
        let abandoned = self.target.cancel_on_drop(&client)?;
        let staged_name = qualified(schema, &stage);
        let plan = self.index_plan(table, &stage);
        // Every index at once, each on its own connection (the GIN index of a JSONB table takes
        // far longer than its primary key and `_migrated_at` index, which are built beside it);
        // then the constraints, which only attach what is built.
        let builds: Vec<(String, String)> = plan
            .iter()
            .filter_map(|ix| {
                let what = format!(
                    "building index {} on table \"{}\"",
                    ix.final_name, table.name
                );
                Some((what, ix.create_index(&staged_name)?))
            })
            .collect();
        futures::stream::iter(builds)
            .map(|(what, sql)| async move { self.target.execute_alone(&what, &sql).await })
            .buffer_unordered(INDEX_BUILDS_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await?;
        for ix in &plan {
            if let Some(sql) = ix.add_constraint(&staged_name) {
                let what = format!(
                    "adding constraint {} to table \"{}\"",
                    ix.final_name, table.name
                );
                self.execute(&client, &what, &sql).await?;
            }
        }
        self.add_identity(&client, table, &staged_name).await?;
        self.execute(
            &client,
            &format!("analyzing table \"{}\"", table.name),
            &format!("ANALYZE {staged_name}"),
        )
        .await?;
        // The swap: one transaction, committed synchronously.
        let mut sql = String::from("BEGIN;\nSET LOCAL synchronous_commit = on;\n");
        if self.opts.drop_existing {
            sql.push_str(&format!(
                "DROP TABLE IF EXISTS {};\n",
                self.target_name(&table.name)
            ));
        }
        sql.push_str(&format!(
            "ALTER TABLE {staged_name} RENAME TO {};\n",
            quote_ident(&table.name)
        ));
        let final_table = self.target_name(&table.name);
        for ix in &plan {
            let taken = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2 AND c.oid NOT IN \
                     (SELECT indexrelid FROM pg_index WHERE indrelid = to_regclass($3)))",
                    &[schema, &ix.final_name, &qualified(schema, &table.name)],
                )
                .await
                .map_err(|e| query_error(Side::Target, "checking index names", e))?
                .get::<_, bool>(0);
            let name = if taken {
                derived_name(&[&ix.final_name, &self.run_id])
            } else {
                ix.final_name.clone()
            };
            if ix.is_constraint() {
                sql.push_str(&format!(
                    "ALTER TABLE {final_table} RENAME CONSTRAINT {} TO {};\n",
                    quote_ident(&ix.temp),
                    quote_ident(&name)
                ));
            } else {
                sql.push_str(&format!(
                    "ALTER INDEX {} RENAME TO {};\n",
                    qualified(schema, &ix.temp),
                    quote_ident(&name)
                ));
            }
        }
        sql.push_str("COMMIT;");
        if let Err(e) = client.batch_execute(&sql).await {
            let _ = client.batch_execute("ROLLBACK").await;
            let mut err = query_error(
                Side::Target,
                &format!("putting the new copy of table \"{}\" in place", table.name),
                e,
            );
            if self.opts.drop_existing {
                err = err.context("the previous table is unchanged");
            }
            return Err(err);
        }
        self.staged.lock().unwrap().remove(&table.name);
        abandoned.done();
        Ok(())
    }

    async fn finish(&self, tables: &[TableInfo]) -> Result<()> {
        if self.opts.mode != Mode::Native {
            return Ok(());
        }
        let client = self.target.connect().await?;
        let copied: std::collections::HashSet<&str> =
            tables.iter().map(|t| t.name.as_str()).collect();
        for t in tables {
            for (i, fk) in t.foreign_keys.iter().enumerate() {
                if !copied.contains(fk.referenced_table.as_str()) {
                    self.warn(format!(
                        "foreign key of table \"{}\" ({}) not created: it references table \"{}\", which was not copied",
                        t.name,
                        fk.columns.join(", "),
                        fk.referenced_table
                    ));
                    continue;
                }
                let name = derived_name(&[&t.name, &fk.columns.join("_"), "fkey", &i.to_string()]);
                let add = format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) NOT VALID",
                    self.target_name(&t.name),
                    quote_ident(&name),
                    column_list(&fk.columns),
                    self.target_name(&fk.referenced_table),
                    column_list(&fk.referenced_columns)
                );
                if let Err(e) = client.batch_execute(&add).await {
                    self.warn(format!(
                        "foreign key {name} on table \"{}\" not created: {}",
                        t.name,
                        query_error(Side::Target, "adding it", e)
                    ));
                    continue;
                }
                let validate = format!(
                    "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                    self.target_name(&t.name),
                    quote_ident(&name)
                );
                if let Err(e) = client.batch_execute(&validate).await {
                    self.warn(format!(
                        "foreign key {name} on table \"{}\" kept NOT VALID: the source data violates it ({})",
                        t.name,
                        query_error(Side::Target, "validating", e)
                    ));
                }
            }
        }
        Ok(())
    }

    async fn abort(&self) {
        let stages: Vec<String> = self
            .staged
            .lock()
            .unwrap()
            .drain()
            .map(|(_, s)| s.stage)
            .collect();
        if stages.is_empty() {
            return;
        }
        let Ok(client) = self.target.connect().await else {
            tracing::warn!(tables = ?stages, "could not connect to drop staging tables");
            return;
        };
        for stage in stages {
            let sql = format!(
                "DROP TABLE IF EXISTS {}",
                qualified(&self.opts.schema, &stage)
            );
            if let Err(e) = client.batch_execute(&sql).await {
                tracing::warn!(table = %stage, error = %e, "could not drop staging table");
            }
        }
    }
}

/// One partition's COPY. Dropping it without `finish` aborts the COPY, so nothing is committed.
pub(crate) struct PgWriter {
    _client: Client,
    sink: Pin<Box<CopyInSink<Bytes>>>,
    what: String,
}

impl PgWriter {
    /// Start `sql` (a `COPY … FROM STDIN (FORMAT binary)`) on `client` and send the header;
    /// `what` names the work in errors.
    pub(crate) async fn start(client: Client, sql: &str, what: String) -> Result<Self> {
        let sink: CopyInSink<Bytes> = client
            .copy_in(sql)
            .await
            .map_err(|e| query_error(Side::Target, &what, e))?;
        let mut sink = Box::pin(sink);
        sink.send(Bytes::from_static(COPY_HEADER))
            .await
            .map_err(|e| query_error(Side::Target, &what, e))?;
        Ok(PgWriter {
            _client: client,
            sink,
            what,
        })
    }
}

#[async_trait::async_trait]
impl PartitionWriter for PgWriter {
    async fn write(&mut self, chunk: Chunk) -> Result<()> {
        self.sink
            .send(chunk.data)
            .await
            .map_err(|e| query_error(Side::Target, &self.what, e))
    }

    async fn finish(mut self: Box<Self>) -> Result<u64> {
        self.sink
            .send(Bytes::from_static(COPY_TRAILER))
            .await
            .map_err(|e| query_error(Side::Target, &self.what, e))?;
        self.sink
            .as_mut()
            .finish()
            .await
            .map_err(|e| query_error(Side::Target, &self.what, e))
    }
}
