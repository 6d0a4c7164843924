//! Reading one partition: a driver cursor of raw documents, read ahead in chunks bounded by rows
//! and bytes, each encoded to an Arrow batch of `(_id text, JSON)` rows.

use crate::encode::{self, Elements};
use crate::error::{document, mongo};
use crate::flat::FlatBuilder;
use crate::partition;
use crate::source::MongoSource;
use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use futures::TryStreamExt;
use mongodb::bson::{RawDocument, RawDocumentBuf};
use mongodb::Cursor;
use pipeline::{BatchStream, Error, Partition, Result, TableInfo};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Accumulates encoded documents into one Arrow batch.
pub(crate) struct BatchBuilder {
    schema: SchemaRef,
    ids: StringBuilder,
    documents: StringBuilder,
    /// The flat columns (`--flatten`), which follow `_id` and `document` in the schema.
    flat: Vec<FlatBuilder>,
}

impl BatchBuilder {
    /// An empty batch of `schema` (the collection schema).
    pub(crate) fn new(schema: SchemaRef) -> Self {
        let flat = schema.fields()[2..]
            .iter()
            .map(|f| FlatBuilder::new(f))
            .collect();
        BatchBuilder {
            schema,
            ids: StringBuilder::new(),
            documents: StringBuilder::new(),
            flat,
        }
    }

    /// Add a whole document (raw BSON bytes).
    pub(crate) fn push_document(&mut self, collection: &str, doc: &RawDocument) -> Result<()> {
        let bytes = doc.as_bytes();
        let (id, json) = encode::id_and_json(bytes).map_err(|p| {
            let id = encode::id_of(bytes).ok();
            document(collection, id.as_deref(), &p)
        })?;
        if !self.flat.is_empty() {
            self.push_flat(bytes)
                .map_err(|p| document(collection, Some(&id), &p))?;
        }
        self.ids.append_value(id);
        self.documents.append_value(json);
        Ok(())
    }

    /// Append the flat columns' values from the document `bytes`: the first value of each field.
    fn push_flat(&mut self, bytes: &[u8]) -> std::result::Result<(), encode::Problem> {
        let mut found = vec![None; self.flat.len()];
        let mut elements = Elements::new(bytes)?;
        while let Some((key, element)) = elements.next_element()? {
            if let Some(i) = self.flat.iter().position(|f| f.name().as_bytes() == key) {
                found[i].get_or_insert(element);
            }
        }
        for (column, value) in self.flat.iter_mut().zip(found) {
            column.push(value)?;
        }
        Ok(())
    }

    /// Add a document identity only (a deletion): `document` and the flat columns are NULL.
    pub(crate) fn push_id(&mut self, id: String) {
        self.ids.append_value(id);
        self.documents.append_null();
        for column in &mut self.flat {
            column.push_null();
        }
    }

    /// The batch built so far; the builder starts over empty.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.ids.finish()),
            Arc::new(self.documents.finish()),
        ];
        columns.extend(self.flat.iter_mut().map(FlatBuilder::finish));
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::conversion(format!("building a batch: {e}")))
    }
}

/// Documents read ahead of the encoder, in chunks of up to a batch's bounds: the driver asks the
/// server for the next documents only once its buffer is drained, so the cursor is drained by a
/// task of its own and the server works while the previous chunk is encoded.
const CHUNKS_AHEAD: usize = 2;

/// Drain `cursor` into chunks bounded by `rows` and `bytes`, sent on `chunks` until the cursor
/// ends, fails, or the reader goes away.
async fn read_ahead(
    mut cursor: Cursor<RawDocumentBuf>,
    chunks: mpsc::Sender<Result<Vec<RawDocumentBuf>>>,
    (rows, bytes): (usize, usize),
    what: String,
) {
    let mut chunk = Vec::new();
    let mut size = 0;
    loop {
        let (more, last) = match cursor.try_next().await {
            Ok(Some(doc)) => {
                size += doc.as_bytes().len();
                chunk.push(doc);
                (chunk.len() >= rows || size >= bytes, false)
            }
            Ok(None) => (!chunk.is_empty(), true),
            Err(e) => {
                let _ = chunks.send(Err(mongo(e, what))).await;
                return;
            }
        };
        if more {
            size = 0;
            if chunks.send(Ok(std::mem::take(&mut chunk))).await.is_err() {
                return;
            }
        }
        if last {
            return;
        }
    }
}

/// Stream the documents of one partition.
pub(crate) async fn open(
    source: &MongoSource,
    table: &TableInfo,
    partition: &Partition,
) -> Result<BatchStream> {
    let query = partition::query(&table.name, &partition.bounds)?;
    let what = format!(
        "reading collection `{}` of MongoDB {}",
        table.name, source.shown
    );
    let cursor = source
        .collection(&table.name)
        .find(query)
        .await
        .map_err(|e| mongo(e, what.clone()))?;
    let bounds = (
        source.options.batch_rows.max(1),
        source.options.batch_bytes.max(1),
    );
    let (sender, chunks) = mpsc::channel(CHUNKS_AHEAD);
    tokio::spawn(read_ahead(cursor, sender, bounds, what));
    let builder = BatchBuilder::new(table.schema.clone());
    let stream = futures::stream::try_unfold(
        (chunks, builder, table.name.clone()),
        |(mut chunks, mut builder, name)| async move {
            let Some(chunk) = chunks.recv().await else {
                return Ok(None);
            };
            for doc in chunk? {
                builder.push_document(&name, &doc)?;
            }
            let batch = builder.finish()?;
            Ok(Some((batch, (chunks, builder, name))))
        },
    );
    Ok(Box::pin(stream))
}
