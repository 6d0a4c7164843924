//! Continuous sync from MongoDB change streams (`pipeline::ChangeCapture`).
//!
//! The position is `{"resume_token": <base64 of the BSON document {"t": token}>}`; the token is
//! the driver's opaque resume token, kept byte-exact. The snapshot position is the token of a
//! change stream opened on the database *before* any collection is read, so every write the
//! copy might miss is replayed; replays converge because every change is applied as an upsert of
//! the whole current document (`fullDocument: updateLookup`) or a delete by `_id`.
//!
//! Events: insert, update and replace upsert the full document (an update whose document is
//! already gone deletes it); delete deletes by `_id`; `drop` of a copied collection truncates its
//! table; `rename`, `dropDatabase` and `invalidate` end the stream with an error saying to run
//! `init` again. Events on collections not being synced are skipped.

use crate::encode;
use crate::error::mongo;
use crate::read::BatchBuilder;
use crate::source::{shut_down, MongoSource};
use base64::Engine as _;
use mongodb::bson::{doc, Document, RawDocumentBuf, Timestamp};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::options::FullDocumentType;
use pipeline::{
    ChangeCapture, ChangeOp, ChangeSet, ChangeStream, Error, ErrorKind, Result, Side, TableChange,
    TableInfo,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long the server holds an idle `getMore` on the change stream.
const MAX_AWAIT: Duration = Duration::from_millis(500);
/// An idle stream returns an empty set this often, so lag is measured and stops are noticed.
const IDLE_SET_EVERY: Duration = Duration::from_secs(2);
/// At most this many events per change set (one target transaction).
const MAX_EVENTS_PER_SET: usize = 5000;
/// A change set closes once its documents reach this many BSON bytes (one server batch at
/// most), so memory stays bounded whatever the documents' sizes (5000 events of 16 MB would
/// not fit).
const MAX_BYTES_PER_SET: usize = 16 << 20;

type Events = mongodb::change_stream::ChangeStream<ChangeStreamEvent<RawDocumentBuf>>;

#[derive(Serialize, Deserialize)]
struct Token {
    t: ResumeToken,
}

fn position(token: &ResumeToken) -> Result<serde_json::Value> {
    let raw = mongodb::bson::to_vec(&Token { t: token.clone() })
        .map_err(|e| Error::conversion(format!("encoding a resume token: {e}")))?;
    Ok(serde_json::json!({
        "resume_token": base64::engine::general_purpose::STANDARD.encode(raw)
    }))
}

fn token(position: &serde_json::Value) -> Result<Option<ResumeToken>> {
    let bad = |why: String| {
        Error::config(format!(
            "the stored MongoDB position {position} is not valid ({why}); run `init` again"
        ))
    };
    let Some(text) = position.get("resume_token").and_then(|t| t.as_str()) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| bad(e.to_string()))?;
    let t: Token = mongodb::bson::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    Ok(Some(t.t))
}

impl MongoSource {
    fn change_error(&self, message: String) -> Error {
        Error::new(ErrorKind::Config, Side::Source, message)
    }

    /// The resume token of a change stream opened on the database now, read through a client
    /// of its own that is shut down before returning: a dropped change stream's cursor is
    /// killed in a background task, which panics if the process's runtime stops first.
    async fn token_now(&self) -> Result<ResumeToken> {
        let what = || format!("opening a change stream on MongoDB {}", self.shown);
        let client = mongodb::Client::with_options(self.client_options.clone())
            .map_err(|e| mongo(e, what()))?;
        let token = async {
            let mut stream = client
                .database(self.db.name())
                .watch()
                .max_await_time(MAX_AWAIT)
                .await
                .map_err(|e| mongo(e, what()))?;
            if stream.resume_token().is_none() {
                stream.next_if_any().await.map_err(|e| mongo(e, what()))?;
            }
            stream.resume_token().ok_or_else(|| {
                self.change_error(format!(
                    "MongoDB {} gave no resume token for a new change stream, so the copy \
                     cannot be tied to a change-stream position",
                    self.shown
                ))
            })
        }
        .await;
        shut_down(client).await;
        token
    }
}

#[async_trait::async_trait]
impl ChangeCapture for MongoSource {
    async fn check(&self, _tables: &[TableInfo]) -> Result<()> {
        let hello = match self.db.run_command(doc! {"hello": 1}).await {
            Ok(h) => h,
            Err(_) => self
                .db
                .run_command(doc! {"isMaster": 1})
                .await
                .map_err(|e| mongo(e, format!("asking MongoDB {} for its role", self.shown)))?,
        };
        let replicated = hello.get_str("setName").is_ok() || hello.get_str("msg") == Ok("isdbgrid");
        if !replicated {
            return Err(self.change_error(format!(
                "MongoDB {} is a standalone server: change streams need a replica set or a \
                 sharded cluster; start it with `--replSet NAME` and run `rs.initiate()` (a \
                 one-member replica set is enough) to sync continuously",
                self.shown
            )));
        }
        self.token_now().await.map(drop)
    }

    async fn start_snapshot(&self, _readers: usize) -> Result<serde_json::Value> {
        position(&self.token_now().await?)
    }

    async fn stream(
        &self,
        position: serde_json::Value,
        tables: &[TableInfo],
    ) -> Result<Box<dyn ChangeStream>> {
        let what = || format!("opening a change stream on MongoDB {}", self.shown);
        let start = token(&position)?.ok_or_else(|| {
            self.change_error(format!(
                "the stored position {position} has no MongoDB resume token; run `init` again"
            ))
        })?;
        let last = Some(start.clone());
        let events = self
            .db
            .watch()
            .full_document(FullDocumentType::UpdateLookup)
            .max_await_time(MAX_AWAIT)
            .resume_after(start)
            .await
            .map_err(|e| {
                let refused = matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(_));
                let err = mongo(e, what());
                // A server error that is not about credentials or privileges (those keep their
                // own hint): the server would not resume from the stored token.
                if refused && err.kind() == ErrorKind::Query {
                    err.context(
                        "the server refused to resume from the stored point (it may have left \
                         the oplog): run `init` again",
                    )
                } else {
                    err
                }
            })?
            .with_type::<ChangeStreamEvent<RawDocumentBuf>>();
        Ok(Box::new(MongoChangeStream {
            client: self.client.clone(),
            events,
            tables: tables.iter().map(|t| (t.name.clone(), t.clone())).collect(),
            last,
            context: Context {
                shown: self.shown.clone(),
                db: self.db.name().to_string(),
            },
        }))
    }
}

/// A database change stream turned into change sets.
struct MongoChangeStream {
    /// The source's client, shut down by `close` once the stream's cursor is killed.
    client: mongodb::Client,
    events: Events,
    tables: HashMap<String, TableInfo>,
    /// The token after the last event handed out.
    last: Option<ResumeToken>,
    context: Context,
}

/// Where the stream reads from, for messages.
struct Context {
    shown: String,
    db: String,
}

/// Change sets under construction: consecutive changes to one table with the same op share a
/// batch.
struct Pending<'a> {
    tables: &'a HashMap<String, TableInfo>,
    changes: Vec<TableChange>,
    current: Option<(String, ChangeOp, BatchBuilder)>,
}

impl Pending<'_> {
    fn builder(&mut self, table: &str, op: ChangeOp) -> Result<&mut BatchBuilder> {
        let same = matches!(&self.current, Some((t, o, _)) if t == table && *o == op);
        if !same {
            self.flush()?;
            let schema = self.tables[table].schema.clone();
            self.current = Some((table.to_string(), op, BatchBuilder::new(schema)));
        }
        Ok(&mut self.current.as_mut().expect("just set").2)
    }

    fn flush(&mut self) -> Result<()> {
        if let Some((table, op, mut builder)) = self.current.take() {
            let rows = builder.finish()?;
            self.changes.push(TableChange { table, op, rows });
        }
        Ok(())
    }
}

impl Context {
    fn ended(&self, what: String) -> Error {
        Error::new(
            ErrorKind::Schema,
            Side::Source,
            format!(
                "MongoDB {}: {what}; the change stream cannot follow this: run `init` again",
                self.shown
            ),
        )
    }

    /// Add one event to `pending`.
    fn apply(
        &self,
        pending: &mut Pending<'_>,
        event: ChangeStreamEvent<RawDocumentBuf>,
    ) -> Result<()> {
        let coll = event
            .ns
            .as_ref()
            .and_then(|ns| ns.coll.clone())
            .unwrap_or_default();
        let tracked = pending.tables.contains_key(&coll);
        let id_of_key = |key: &Option<Document>| -> Result<String> {
            let key = key.as_ref().ok_or_else(|| {
                Error::conversion(format!("a change event on `{coll}` has no documentKey"))
            })?;
            let raw = mongodb::bson::to_vec(key)
                .map_err(|e| Error::conversion(format!("document key on `{coll}`: {e}")))?;
            encode::id_of(&raw).map_err(|p| crate::error::document(&coll, None, &p))
        };
        match event.operation_type {
            OperationType::Insert | OperationType::Update | OperationType::Replace if tracked => {
                match &event.full_document {
                    Some(doc) => pending
                        .builder(&coll, ChangeOp::Upsert)?
                        .push_document(&coll, doc)?,
                    None => {
                        let id = id_of_key(&event.document_key)?;
                        pending.builder(&coll, ChangeOp::Delete)?.push_id(id);
                    }
                }
            }
            OperationType::Delete if tracked => {
                let id = id_of_key(&event.document_key)?;
                pending.builder(&coll, ChangeOp::Delete)?.push_id(id);
            }
            OperationType::Drop if tracked => {
                pending.flush()?;
                let schema = pending.tables[&coll].schema.clone();
                pending.changes.push(TableChange {
                    table: coll,
                    op: ChangeOp::Truncate,
                    rows: arrow_array::RecordBatch::new_empty(schema),
                });
            }
            OperationType::Rename if tracked => {
                let to = event.to.and_then(|ns| ns.coll).unwrap_or_default();
                return Err(self.ended(format!("collection `{coll}` was renamed to `{to}`")));
            }
            OperationType::DropDatabase => {
                return Err(self.ended(format!("database `{}` was dropped", self.db)));
            }
            OperationType::Invalidate => {
                return Err(self.ended("the change stream was invalidated".into()));
            }
            _ => {}
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ChangeStream for MongoChangeStream {
    /// Kill the stream's cursor and wait for it: the driver kills a dropped cursor in a
    /// background task, which panics if the runtime stops under it.
    async fn close(self: Box<Self>) {
        let client = self.client.clone();
        drop(self);
        shut_down(client).await;
    }

    async fn next(&mut self) -> Result<Option<ChangeSet>> {
        let started = Instant::now();
        let mut pending = Pending {
            tables: &self.tables,
            changes: Vec::new(),
            current: None,
        };
        let (mut count, mut bytes) = (0, 0);
        let mut committed_at_ms = None;
        loop {
            let event = self.events.next_if_any().await.map_err(|e| {
                let shown = &self.context.shown;
                mongo(e, format!("reading the change stream of MongoDB {shown}"))
            })?;
            match event {
                Some(event) => {
                    let id = event.id.clone();
                    committed_at_ms = event
                        .wall_time
                        .map(|w| w.timestamp_millis())
                        .or(event
                            .cluster_time
                            .map(|t: Timestamp| i64::from(t.time) * 1000))
                        .or(committed_at_ms);
                    bytes += event
                        .full_document
                        .as_ref()
                        .map_or(0, |d| d.as_bytes().len());
                    self.context.apply(&mut pending, event)?;
                    self.last = Some(id);
                    count += 1;
                    if count >= MAX_EVENTS_PER_SET || bytes >= MAX_BYTES_PER_SET {
                        break;
                    }
                }
                None if count > 0 || started.elapsed() >= IDLE_SET_EVERY => break,
                None => {}
            }
        }
        pending.flush()?;
        let changes = pending.changes;
        if count == 0 {
            if let Some(token) = self.events.resume_token() {
                self.last = Some(token);
            }
        }
        let position = match &self.last {
            Some(token) => position(token)?,
            None => serde_json::Value::Null,
        };
        Ok(Some(ChangeSet {
            changes,
            position,
            committed_at_ms: if count == 0 { None } else { committed_at_ms },
        }))
    }
}
