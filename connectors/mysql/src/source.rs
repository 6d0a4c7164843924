//! The MySQL source: catalog, planner and partition readers behind `pipeline::Source`.
//!
//! Catalog work uses short-lived connections; partition readers borrow connections of one
//! consistent snapshot (see `snapshot`), taken by `ChangeCapture::start_snapshot` (and kept), or,
//! when the caller did not ask for one, at the first `open` of a run for as many readers as
//! there are CPU cores (and retired once the run stops using it).

use crate::catalog::{self, Table};
use crate::conn::MySqlLocation;
use crate::partition;
use crate::read::{self, ReadPlan, ROW_HASH_COLUMN};
use crate::snapshot::Snapshot;
use crate::types::Conv;
use arrow_schema::{DataType, Field, Schema};
use pipeline::{
    AutoIncrement, BatchStream, CheckInfo, ColumnInfo, Mode, Partition, Result, Source,
    SourceOptions, TableInfo,
};
use std::sync::Arc;
use std::time::Duration;

/// A MySQL or MariaDB database, read over the binary protocol.
pub struct MySqlSource {
    pub(crate) location: MySqlLocation,
    pub(crate) options: SourceOptions,
    /// Views of the database: not copied, listed in a warning.
    views: Vec<String>,
    snapshot: tokio::sync::Mutex<Option<Shared>>,
}

/// The snapshot readers use now.
struct Shared {
    snapshot: Arc<Snapshot>,
    /// Taken for change capture: every read of this source stays in it.
    pinned: bool,
}

/// A snapshot nobody pinned is retired once unused this long, so that a later run (a periodic
/// refresh, say) reads fresh data; partitions of one run open back to back, well within it.
const UNPINNED_IDLE: Duration = Duration::from_secs(2);

impl MySqlSource {
    /// Connect to check the server, the credentials and the database, and read the table list.
    pub async fn open(location: MySqlLocation, options: SourceOptions) -> Result<Self> {
        let mut conn = location.connect().await?;
        let (_, views) = catalog::list(&mut conn, location.database()).await?;
        drop(conn);
        Ok(MySqlSource {
            location,
            options,
            views,
            snapshot: tokio::sync::Mutex::new(None),
        })
    }

    /// The snapshot readers share: the pinned one, or the current one while a run uses it, or
    /// a new one for `readers` connections. `pin` keeps it for the life of the source.
    pub(crate) async fn snapshot(&self, readers: usize, pin: bool) -> Result<Arc<Snapshot>> {
        let mut current = self.snapshot.lock().await;
        if let Some(shared) = current.as_mut() {
            if shared.pinned || !shared.snapshot.unused_for(UNPINNED_IDLE) {
                shared.pinned |= pin;
                return Ok(shared.snapshot.clone());
            }
        }
        let snapshot = Snapshot::take(&self.location, readers).await?;
        *current = Some(Shared {
            snapshot: snapshot.clone(),
            pinned: pin,
        });
        Ok(snapshot)
    }

    /// The catalog description of `name`.
    pub(crate) async fn catalog_table(&self, name: &str) -> Result<Table> {
        let mut conn = self.location.connect().await?;
        catalog::table(&mut conn, self.location.database(), name).await
    }
}

#[async_trait::async_trait]
impl Source for MySqlSource {
    fn kind(&self) -> &'static str {
        "mysql"
    }

    fn location(&self) -> String {
        self.location.shown().to_string()
    }

    async fn list_tables(&self) -> Result<Vec<String>> {
        let mut conn = self.location.connect().await?;
        Ok(catalog::list(&mut conn, self.location.database()).await?.0)
    }

    async fn describe(&self, table: &str) -> Result<TableInfo> {
        let t = self.catalog_table(table).await?;
        let mut info = describe(&t, self.options.mode);
        let first = self.list_tables().await?.into_iter().next();
        if !self.views.is_empty() && first.as_deref() == Some(table) {
            info.warnings.push(format!(
                "views are not copied; skipped: {}",
                self.views.join(", ")
            ));
        }
        Ok(info)
    }

    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>> {
        let t = self.catalog_table(&table.name).await?;
        let mut conn = self.location.connect().await?;
        let db = self.location.database();
        partition::plan(&mut conn, db, &t, filter, self.options.partition_rows).await
    }

    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
        let readers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let snapshot = self.snapshot(readers, false).await?;
        let t = self.catalog_table(&table.name).await?;
        let mut convs: Vec<Option<Conv>> = Vec::with_capacity(table.schema.fields().len());
        for field in table.schema.fields() {
            match t.columns.iter().find(|c| c.name == *field.name()) {
                Some(c) => convs.push(Some(Conv::of(c, self.options.mode))),
                None if field.name() == ROW_HASH_COLUMN => convs.push(None),
                None => {
                    return Err(pipeline::Error::config(format!(
                        "table `{}` has no column `{}` any more; rerun the command",
                        table.name,
                        field.name()
                    )))
                }
            }
        }
        let plan = ReadPlan {
            db: self.location.database().to_string(),
            table: table.clone(),
            convs,
        };
        read::open(snapshot, plan, partition, &self.options)
    }

    fn change_capture(&self) -> Option<&dyn pipeline::ChangeCapture> {
        Some(self)
    }

    async fn preflight(&self, tables: &[TableInfo]) -> Vec<pipeline::Check> {
        crate::preflight::checks(&self.location, tables).await
    }
}

/// The pipeline's description of a catalog table in `mode`.
pub(crate) fn describe(t: &Table, mode: Mode) -> TableInfo {
    let mut warnings: Vec<String> = t
        .skipped_indexes
        .iter()
        .map(|i| format!("{i} has no PostgreSQL equivalent and is not rebuilt"))
        .collect();
    let mut fields = Vec::with_capacity(t.columns.len() + 1);
    let mut columns = Vec::with_capacity(t.columns.len() + 1);
    let mut checks = Vec::new();
    for c in &t.columns {
        let conv = Conv::of(c, mode);
        let field = conv.field(&c.name, c.nullable);
        columns.push(ColumnInfo {
            name: c.name.clone(),
            source_type: c.column_type.clone(),
            nullable: field.is_nullable(),
        });
        fields.push(field);
        if c.data_type == "enum" {
            checks.push(CheckInfo {
                column: c.name.clone(),
                allowed: c.labels(),
            });
        }
    }
    let mut primary_key = t.primary_key.clone();
    let mut unique_keys = t.unique_keys.clone();
    if primary_key.is_empty() {
        // A unique key over NOT NULL columns identifies rows as well as a primary key.
        let not_null = |k: &Vec<String>| {
            k.iter()
                .all(|n| t.columns.iter().any(|c| &c.name == n && !c.nullable))
        };
        if let Some(i) = unique_keys.iter().position(not_null) {
            primary_key = unique_keys.remove(i);
        }
    }
    let mut hidden_columns = Vec::new();
    if primary_key.is_empty() && mode == Mode::Jsonb {
        fields.push(Field::new(ROW_HASH_COLUMN, DataType::Utf8, false));
        columns.push(ColumnInfo {
            name: ROW_HASH_COLUMN.into(),
            source_type: "row hash".into(),
            nullable: false,
        });
        hidden_columns.push(ROW_HASH_COLUMN.to_string());
        warnings.push(
            "no primary key: rows are identified by a hash of their values (identical rows \
             get -2, -3, … suffixes)"
                .into(),
        );
    }
    let auto_increment = t.columns.iter().find(|c| c.auto_increment).and_then(|c| {
        Some(AutoIncrement {
            column: c.name.clone(),
            next_value: i64::try_from(t.auto_increment?).ok()?,
        })
    });
    TableInfo {
        name: t.name.clone(),
        schema: Arc::new(Schema::new(fields)),
        columns,
        primary_key,
        hidden_columns,
        flat_columns: Vec::new(),
        unique_keys,
        indexes: t.indexes.clone(),
        foreign_keys: t.foreign_keys.clone(),
        rows: t.rows_estimate,
        rows_exact: false,
        bytes: t.data_length,
        warnings,
        auto_increment,
        checks,
    }
}
