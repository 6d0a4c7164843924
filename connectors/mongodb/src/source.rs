//! The MongoDB source: one database of one deployment behind `pipeline::Source`.
//!
//! One driver `Client` (a connection pool) is shared by every call, so all methods may run
//! concurrently. Reads use `readConcern: majority`: a copy never contains writes that a failover
//! could roll back.

use crate::error::{mongo, redact};
use crate::partition;
use crate::read;
use arrow_schema::{DataType, Field, Schema};
use mongodb::bson::{doc, Document};
use mongodb::options::{ClientOptions, CollectionOptions, ReadConcern};
use mongodb::results::CollectionType;
use mongodb::{Client, Collection, Database};
use pipeline::types::{META_JSONB_DOCUMENT, META_PG_TYPE};
use pipeline::{
    BatchStream, ColumnInfo, Error, ErrorKind, Mode, Partition, Result, Side, Source,
    SourceOptions, TableInfo,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The column holding each document's canonical id text (the JSONB `id`).
pub const ID_COLUMN: &str = "_id";
/// The column holding each document as JSON text (the JSONB `data`, or a `jsonb` column in
/// native mode).
pub const DOCUMENT_COLUMN: &str = "document";

/// How long the driver looks for a reachable server before failing, unless the URI sets
/// `serverSelectionTimeoutMS`: long enough for an election, short enough for a typo'd host.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A MongoDB database, opened for reading.
pub struct MongoSource {
    pub(crate) client: Client,
    /// The options `client` was made with, for short-lived clients (see `change.rs`).
    pub(crate) client_options: ClientOptions,
    pub(crate) db: Database,
    /// `host:port/db`, for messages (never credentials).
    pub(crate) shown: String,
    pub(crate) options: SourceOptions,
}

/// Shut `client` down, waiting (up to 5 s) for its dropped cursors to be killed.
pub(crate) async fn shut_down(client: Client) {
    if tokio::time::timeout(Duration::from_secs(5), client.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("the MongoDB client did not shut down within 5 s");
    }
}

impl Drop for MongoSource {
    /// Shut the client down as clean-up the program waits for at exit: a client merely dropped
    /// ends its server sessions in a task of its own, which panics if the runtime stops under
    /// it.
    fn drop(&mut self) {
        pipeline::cleanup::spawn(shut_down(self.client.clone()));
    }
}

impl MongoSource {
    /// Connect to the database the URI names (`mongodb://user:pass@host:27017/db`), check that
    /// the server answers, authentication succeeds and the database exists.
    pub async fn open(uri: &str, options: SourceOptions) -> Result<Self> {
        let config =
            |message: String| Error::new(ErrorKind::Config, Side::Source, redact(&message, uri));
        let mut client_options = ClientOptions::parse(uri).await.map_err(|e| {
            config(format!(
                "the MongoDB URI is not valid: {}; expected mongodb://[user:password@]host[:port]/database",
                e.kind
            ))
        })?;
        let hosts: Vec<String> = client_options.hosts.iter().map(|h| h.to_string()).collect();
        let Some(db_name) = client_options.default_database.clone() else {
            return Err(config(format!(
                "the MongoDB URI for {} names no database: add it to the path, e.g. \
                 mongodb://{}/mydb",
                hosts.join(","),
                hosts.first().map_or("host", String::as_str)
            )));
        };
        let shown = format!("{}/{db_name}", hosts.join(","));
        client_options
            .server_selection_timeout
            .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
        client_options
            .connect_timeout
            .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
        client_options
            .app_name
            .get_or_insert("seren-replicator".into());
        let client = Client::with_options(client_options.clone())
            .map_err(|e| redact_err(mongo(e, format!("connecting to MongoDB {shown}")), uri))?;
        let db = client.database(&db_name);
        db.run_command(doc! {"ping": 1})
            .await
            .map_err(|e| redact_err(mongo(e, format!("connecting to MongoDB {shown}")), uri))?;
        let source = MongoSource {
            client,
            client_options,
            db,
            shown,
            options,
        };
        if source.collections().await?.is_empty() {
            return Err(source.missing_database().await);
        }
        Ok(source)
    }

    /// The error for a database without collections: unknown, or empty.
    async fn missing_database(&self) -> Error {
        let name = self.db.name();
        let known = self.client.list_database_names().await.ok();
        let message = match known {
            Some(names) if !names.iter().any(|n| n == name) => format!(
                "MongoDB {}: database `{name}` does not exist; databases there: {}",
                self.shown,
                names.join(", ")
            ),
            _ => format!(
                "MongoDB {}: database `{name}` has no collections to copy",
                self.shown
            ),
        };
        Error::new(ErrorKind::Schema, Side::Source, message)
    }

    /// `(name, is_view)` of every collection of the database except `system.*`, sorted by name.
    pub(crate) async fn collections(&self) -> Result<Vec<(String, bool)>> {
        use futures::TryStreamExt;
        let what = || format!("listing the collections of MongoDB {}", self.shown);
        let specs: Vec<_> = self
            .db
            .list_collections()
            .await
            .map_err(|e| mongo(e, what()))?
            .try_collect()
            .await
            .map_err(|e| mongo(e, what()))?;
        let mut names: Vec<(String, bool)> = specs
            .into_iter()
            .filter(|s| !s.name.starts_with("system."))
            .map(|s| (s.name, s.collection_type == CollectionType::View))
            .collect();
        names.sort();
        Ok(names)
    }

    /// A collection handle reading raw documents with `readConcern: majority`.
    pub(crate) fn collection(&self, name: &str) -> Collection<mongodb::bson::RawDocumentBuf> {
        let options = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .build();
        self.db.collection_with_options(name, options)
    }

    /// A collection's document count and data size in bytes, both from the server's metadata:
    /// `$collStats` (one call, also on sharded clusters, where each shard answers), else the
    /// `count` command's estimate with the size unknown (0).
    async fn stats(&self, table: &str) -> Result<(u64, u64)> {
        use futures::TryStreamExt;
        let stats = self
            .db
            .collection::<Document>(table)
            .aggregate([doc! {"$collStats": {"storageStats": {}}}])
            .await;
        if let Ok(cursor) = stats {
            if let Ok(shards) = cursor.try_collect::<Vec<Document>>().await {
                let sum = |key: &str| -> Option<u64> {
                    shards
                        .iter()
                        .map(|s| {
                            s.get_document("storageStats")
                                .ok()?
                                .get(key)
                                .and_then(number)
                        })
                        .sum()
                };
                if let (false, Some(rows)) = (shards.is_empty(), sum("count")) {
                    return Ok((rows, sum("size").unwrap_or(0)));
                }
            }
        }
        let rows = self
            .collection(table)
            .estimated_document_count()
            .await
            .map_err(|e| {
                mongo(
                    e,
                    format!("counting collection `{table}` of MongoDB {}", self.shown),
                )
            })?;
        Ok((rows, 0))
    }

    /// The Arrow schema of collection `table`: `_id`, `document`, then its flat columns
    /// (`--flatten`), in the order given.
    pub(crate) fn schema(&self, table: &str) -> Result<Arc<Schema>> {
        let document =
            Field::new(DOCUMENT_COLUMN, DataType::Utf8, true).with_metadata(HashMap::from([
                (META_PG_TYPE.to_string(), "jsonb".to_string()),
                (META_JSONB_DOCUMENT.to_string(), "true".to_string()),
            ]));
        let mut fields = vec![Field::new(ID_COLUMN, DataType::Utf8, false), document];
        for column in self.flat_columns(table) {
            let taken = fields.iter().any(|f| f.name() == &column.name);
            if taken {
                return Err(Error::config(format!(
                    "--flatten for collection `{table}`: field `{}` {}",
                    column.name,
                    if column.name == ID_COLUMN {
                        "is already the `id` column"
                    } else if column.name == DOCUMENT_COLUMN {
                        "cannot be flattened: `document` is the name of the whole document's \
                         column in native mode"
                    } else {
                        "is named twice"
                    }
                )));
            }
            fields.push(crate::flat::field(column));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// The `--flatten` columns of collection `table`.
    fn flat_columns(&self, table: &str) -> &[pipeline::FlatColumn] {
        self.options.flatten.get(table).map_or(&[], Vec::as_slice)
    }

    /// The user's `--table-filter` for a collection: a JSON query document (extended JSON
    /// allowed), e.g. `{"status": "active"}`.
    pub(crate) fn parse_filter(table: &str, filter: Option<&str>) -> Result<Document> {
        let Some(text) = filter else {
            return Ok(Document::new());
        };
        let bad = |why: String| {
            Error::config(format!(
                "filter for collection `{table}` must be a JSON query document such as \
                 {{\"status\": \"active\"}}: {why}"
            ))
        };
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        match mongodb::bson::Bson::try_from(json) {
            Ok(mongodb::bson::Bson::Document(d)) => Ok(d),
            Ok(_) => Err(bad("it is not an object".into())),
            Err(e) => Err(bad(e.to_string())),
        }
    }
}

/// Replace the URI's password, should a message ever quote it.
fn redact_err(e: Error, uri: &str) -> Error {
    let message = redact(e.message(), uri);
    Error::new(e.kind(), e.side(), message).retryable(e.is_retryable())
}

#[async_trait::async_trait]
impl Source for MongoSource {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    fn location(&self) -> String {
        self.shown.clone()
    }

    async fn list_tables(&self) -> Result<Vec<String>> {
        let all = self.collections().await?;
        let views: Vec<&str> = all.iter().filter(|c| c.1).map(|c| c.0.as_str()).collect();
        if !views.is_empty() {
            tracing::warn!(
                source = %self.shown,
                views = %views.join(", "),
                "views are not copied (they hold no documents of their own)"
            );
        }
        Ok(all.into_iter().filter(|c| !c.1).map(|c| c.0).collect())
    }

    async fn describe(&self, table: &str) -> Result<TableInfo> {
        let all = self.collections().await?;
        match all.iter().find(|c| c.0 == table) {
            None => {
                return Err(Error::new(
                    ErrorKind::Schema,
                    Side::Source,
                    format!("MongoDB {}: no collection `{table}`", self.shown),
                ))
            }
            Some((_, true)) => {
                return Err(Error::new(
                    ErrorKind::Schema,
                    Side::Source,
                    format!(
                        "MongoDB {}: `{table}` is a view, which holds no documents of its own; \
                         copy the collections it reads instead",
                        self.shown
                    ),
                ))
            }
            Some(_) => {}
        }
        let (rows, bytes) = self.stats(table).await?;
        let schema = self.schema(table)?;
        let mut columns = vec![
            ColumnInfo {
                name: ID_COLUMN.into(),
                source_type: "_id".into(),
                nullable: false,
            },
            ColumnInfo {
                name: DOCUMENT_COLUMN.into(),
                source_type: "document".into(),
                nullable: false,
            },
        ];
        let flat_columns: Vec<String> = (self.flat_columns(table).iter())
            .map(|c| c.name.clone())
            .collect();
        columns.extend(flat_columns.iter().map(|name| ColumnInfo {
            name: name.clone(),
            source_type: "field".into(),
            nullable: true,
        }));
        let (primary_key, hidden_columns) = match self.options.mode {
            Mode::Jsonb => (vec![], vec![ID_COLUMN.to_string()]),
            Mode::Native => (vec![ID_COLUMN.to_string()], vec![]),
        };
        Ok(TableInfo {
            name: table.to_string(),
            schema,
            columns,
            primary_key,
            hidden_columns,
            flat_columns,
            rows,
            rows_exact: false,
            bytes,
            ..Default::default()
        })
    }

    async fn plan(&self, table: &TableInfo, filter: Option<&str>) -> Result<Vec<Partition>> {
        partition::plan(self, table, filter).await
    }

    async fn open(&self, table: &TableInfo, partition: &Partition) -> Result<BatchStream> {
        read::open(self, table, partition).await
    }

    fn change_capture(&self) -> Option<&dyn pipeline::ChangeCapture> {
        Some(self)
    }

    async fn preflight(&self, tables: &[TableInfo]) -> Vec<pipeline::Check> {
        crate::preflight::checks(self, tables).await
    }
}

/// A non-negative BSON number as u64.
fn number(v: &mongodb::bson::Bson) -> Option<u64> {
    match v {
        mongodb::bson::Bson::Int32(n) => u64::try_from(*n).ok(),
        mongodb::bson::Bson::Int64(n) => u64::try_from(*n).ok(),
        mongodb::bson::Bson::Double(n) if *n >= 0.0 => Some(*n as u64),
        _ => None,
    }
}
