//! Reading one partition: a driver cursor of raw documents, encoded to `(_id text, JSON)` rows and
//! cut into Arrow batches bounded by rows and bytes.

use crate::encode;
use crate::error::{document, mongo};
use crate::partition;
use crate::source::MongoSource;
use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use mongodb::bson::RawDocument;
use mongodb::Cursor;
use pipeline::{BatchStream, Error, Partition, Result, TableInfo};
use std::sync::Arc;

/// Documents asked of the server per round trip (the server also caps replies at 16 MB).
const CURSOR_BATCH: u32 = 1000;

/// Accumulates encoded documents into one Arrow batch.
pub(crate) struct BatchBuilder {
    schema: SchemaRef,
    ids: StringBuilder,
    documents: StringBuilder,
    rows: usize,
    bytes: usize,
}

impl BatchBuilder {
    /// An empty batch of `schema` (the collection schema).
    pub(crate) fn new(schema: SchemaRef) -> Self {
        BatchBuilder {
            schema,
            ids: StringBuilder::new(),
            documents: StringBuilder::new(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Add a whole document (raw BSON bytes).
    pub(crate) fn push_document(&mut self, collection: &str, doc: &RawDocument) -> Result<()> {
        let bytes = doc.as_bytes();
        let (id, json) = encode::id_and_json(bytes).map_err(|p| {
            let id = encode::id_of(bytes).ok();
            document(collection, id.as_deref(), &p)
        })?;
        self.bytes += id.len() + json.len();
        self.ids.append_value(id);
        self.documents.append_value(json);
        self.rows += 1;
        Ok(())
    }

    /// Add a document identity only (a deletion): `document` is NULL.
    pub(crate) fn push_id(&mut self, id: String) {
        self.bytes += id.len();
        self.ids.append_value(id);
        self.documents.append_null();
        self.rows += 1;
    }

    /// Rows so far.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Approximate bytes so far.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The batch built so far; the builder starts over empty.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.ids.finish()),
            Arc::new(self.documents.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::conversion(format!("building a batch: {e}")))
    }
}

/// The state of one partition's stream.
struct Reader {
    cursor: Cursor<mongodb::bson::RawDocumentBuf>,
    builder: BatchBuilder,
    table: String,
    shown: String,
    batch_rows: usize,
    batch_bytes: usize,
    done: bool,
}

impl Reader {
    /// The next batch, `None` when the cursor is exhausted.
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        while self.builder.rows() < self.batch_rows && self.builder.bytes() < self.batch_bytes {
            let more = self.cursor.advance().await.map_err(|e| {
                mongo(
                    e,
                    format!(
                        "reading collection `{}` of MongoDB {}",
                        self.table, self.shown
                    ),
                )
            })?;
            if !more {
                self.done = true;
                break;
            }
            self.builder
                .push_document(&self.table, self.cursor.current())?;
        }
        if self.builder.rows() == 0 {
            return Ok(None);
        }
        self.builder.finish().map(Some)
    }
}

/// Stream the documents of one partition.
pub(crate) async fn open(
    source: &MongoSource,
    table: &TableInfo,
    partition: &Partition,
) -> Result<BatchStream> {
    let query = partition::query(&table.name, &partition.bounds)?;
    let cursor = source
        .collection(&table.name)
        .find(query)
        .batch_size(CURSOR_BATCH)
        .await
        .map_err(|e| {
            mongo(
                e,
                format!(
                    "reading collection `{}` of MongoDB {}",
                    table.name, source.shown
                ),
            )
        })?;
    let reader = Reader {
        cursor,
        builder: BatchBuilder::new(table.schema.clone()),
        table: table.name.clone(),
        shown: source.shown.clone(),
        batch_rows: source.options.batch_rows.max(1),
        batch_bytes: source.options.batch_bytes.max(1),
        done: false,
    };
    let stream = futures::stream::try_unfold(reader, |mut reader| async move {
        Ok(reader.next_batch().await?.map(|batch| (batch, reader)))
    });
    Ok(Box::pin(stream))
}
