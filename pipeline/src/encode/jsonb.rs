//! JSONB mode: each row becomes `(id text, data jsonb, _source_type text)`; see
//! `docs/jsonb-encoding.md` for the value encoding.
//!
//! `data` is written as JSON text straight into the output buffer (binary `jsonb` is a version
//! byte, 1, followed by the text), with each column's escaped `"name":` key prepared once per
//! encoder.

use super::native::NativeColumn;
use super::value::{null_id, JsonColumn};
use super::{begin_field, column_error, end_field, put_bytes_field, schema_mismatch};
use super::{value_error, Problem};
use crate::catalog::TableInfo;
use crate::error::{Error, ErrorKind, Result, Side};
use crate::sink::BatchEncoder;
use crate::types::{PgType, META_JSONB_DOCUMENT};
use arrow_array::{new_empty_array, RecordBatch};
use arrow_schema::SchemaRef;
use bytes::{BufMut, BytesMut};

/// Target columns the JSONB encoder writes, in tuple order (`_migrated_at` takes its default),
/// before a table's flat columns.
pub const JSONB_COLUMNS: [&str; 3] = ["id", "data", "_source_type"];

/// Every column of the JSONB layout, for names a flat column may not take.
const LAYOUT_COLUMNS: [&str; 4] = ["id", "data", "_source_type", "_migrated_at"];

/// The columns the JSONB encoder writes for `table`, in tuple order, with their types:
/// [`JSONB_COLUMNS`], then the table's flat columns. Errors name a flat column that is missing
/// from the schema, takes a layout column's name, or has no PostgreSQL type.
pub fn jsonb_columns(table: &TableInfo) -> Result<Vec<(String, PgType)>> {
    let mut columns: Vec<(String, PgType)> = JSONB_COLUMNS
        .iter()
        .zip([PgType::Text, PgType::Jsonb, PgType::Text])
        .map(|(name, ty)| (name.to_string(), ty))
        .collect();
    for name in &table.flat_columns {
        let problem = |p: &str| {
            Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!("table `{}`, flat column `{name}`: {p}", table.name),
            )
        };
        if LAYOUT_COLUMNS.contains(&name.as_str()) {
            return Err(problem(
                "JSONB mode's own columns are id, data, _source_type and _migrated_at; flatten \
                 a field of another name",
            ));
        }
        let field = table
            .schema
            .field_with_name(name)
            .map_err(|_| problem("not in the table's schema (a connector bug)"))?;
        let ty = PgType::for_field(field)
            .ok_or_else(|| problem(&format!("no PostgreSQL type for {}", field.data_type())))?;
        columns.push((name.clone(), ty));
    }
    Ok(columns)
}

/// Version byte that opens a binary `jsonb` value.
const JSONB_VERSION: u8 = 1;

/// The largest `jsonb` value PostgreSQL stores (`JENTRY_OFFLENMASK`, 2^28 - 1 bytes). Rows are
/// checked against it by the size of their JSON text, which the binary form rarely undercuts:
/// refused here, before PostgreSQL sees the row, with the fix.
const JSONB_MAX_BYTES: usize = 0x0FFF_FFFF;

/// Encodes batches as JSONB-mode tuples.
pub struct JsonbEncoder {
    table: String,
    schema: SchemaRef,
    /// Data columns (hidden ones left out): schema index and escaped `"name":` key, prefixed
    /// with `,` after the first.
    data: Vec<(usize, Vec<u8>)>,
    /// Schema indexes of the columns that make up `id`, in key order.
    id: Vec<usize>,
    /// Schema indexes of the flat columns, written after `_source_type` in this order.
    flat: Vec<usize>,
    /// Whether the only data column is a whole document (`seren.jsonb_document = true`; NULL in
    /// a deletion, which carries only its identity): its
    /// JSON object is written as `data` itself rather than as a member of it.
    document: bool,
    /// The `_source_type` field, framed once: length, then the text.
    source_type: Vec<u8>,
}

impl JsonbEncoder {
    /// An encoder for `table`'s batches, tagging rows with `source_type`.
    ///
    /// Fails, naming the column, when a column's Arrow type has no JSON encoding, and when the
    /// table has neither a primary key nor a hidden row id to build `id` from.
    pub fn new(table: &TableInfo, source_type: &str) -> Result<Self> {
        let schema = table.schema.clone();
        let fields = schema.fields();
        let schema_error = |column: &str, problem: &str| {
            Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!("table `{}`, column `{column}`: {problem}", table.name),
            )
        };
        // Each column's rules are checked by building its writer over an empty array: the same
        // code that encodes batches, so the check and the encoding cannot disagree.
        let check = |index: usize| {
            let field = &fields[index];
            let empty = new_empty_array(field.data_type());
            JsonColumn::new(field, empty.as_ref())
                .map(drop)
                .map_err(|p| schema_error(field.name(), &p))
        };
        jsonb_columns(table)?;
        let mut flat = Vec::new();
        for name in &table.flat_columns {
            let index = schema.index_of(name).expect("checked by jsonb_columns");
            let empty = new_empty_array(fields[index].data_type());
            NativeColumn::new(&fields[index], empty.as_ref())
                .map_err(|p| schema_error(name, &p))?;
            flat.push(index);
        }
        let mut data = Vec::new();
        for (index, field) in fields.iter().enumerate() {
            if !table.is_data_column(field.name()) || flat.contains(&index) {
                continue;
            }
            check(index)?;
            let key = super::json::object_key(field.name(), data.is_empty())
                .map_err(|p| schema_error(field.name(), &p))?;
            data.push((index, key));
        }
        let document = fields.iter().any(|f| {
            f.metadata()
                .get(META_JSONB_DOCUMENT)
                .is_some_and(|v| v == "true")
        });
        if document
            && (data.len() != 1 || PgType::for_field(&fields[data[0].0]) != Some(PgType::Jsonb))
        {
            return Err(schema_error(
                fields[data.first().map_or(0, |d| d.0)].name(),
                "a `seren.jsonb_document` column must be the table's only data column and hold \
                 JSON text (a connector bug)",
            ));
        }
        if table.id_columns().is_empty() {
            return Err(Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!(
                    "table `{}` has neither a primary key nor a row id, so its rows have no `id` \
                     in JSONB mode; add a primary key in the source, or use native mode",
                    table.name
                ),
            ));
        }
        let mut id = Vec::new();
        for name in table.id_columns() {
            let index = schema.index_of(name).map_err(|_| {
                schema_error(
                    name,
                    "this key column is not in the table's schema (a connector bug)",
                )
            })?;
            check(index)?;
            id.push(index);
        }
        let mut framed = BytesMut::new();
        put_bytes_field(&mut framed, source_type.as_bytes())
            .map_err(|p| Error::config(format!("source type: {p}")))?;
        Ok(JsonbEncoder {
            table: table.name.clone(),
            schema,
            data,
            id,
            flat,
            document,
            source_type: framed.to_vec(),
        })
    }

    /// Write one tuple; on failure, the name of the column at fault and why.
    fn write_row<'s>(
        &'s self,
        id: &[JsonColumn<'_>],
        data: &[JsonColumn<'_>],
        flat: &[NativeColumn<'_>],
        row: usize,
        out: &mut BytesMut,
    ) -> Result<(), (&'s str, Problem)> {
        out.put_i16((JSONB_COLUMNS.len() + flat.len()) as i16);
        self.write_layout(id, data, row, out)?;
        for (column, &index) in flat.iter().zip(&self.flat) {
            column
                .write(row, out)
                .map_err(|p| (self.schema.field(index).name().as_str(), p))?;
        }
        Ok(())
    }

    /// Write the tuple's `id`, `data` and `_source_type`.
    fn write_layout<'s>(
        &'s self,
        id: &[JsonColumn<'_>],
        data: &[JsonColumn<'_>],
        row: usize,
        out: &mut BytesMut,
    ) -> Result<(), (&'s str, Problem)> {
        let name = |index: usize| self.schema.field(index).name().as_str();

        let id_field = begin_field(out);
        if let [single] = id {
            single
                .write_text(row, out)
                .map_err(|p| (name(self.id[0]), p))?;
        } else {
            out.put_u8(b'[');
            for (k, (column, &index)) in id.iter().zip(&self.id).enumerate() {
                if k > 0 {
                    out.put_u8(b',');
                }
                if column.is_null(row) {
                    return Err((name(index), null_id()));
                }
                column.write(row, out).map_err(|p| (name(index), p))?;
            }
            out.put_u8(b']');
        }
        end_field(out, id_field).map_err(|p| (JSONB_COLUMNS[0], p))?;

        if let ([_], [column], true) = (&self.data[..], data, self.document) {
            if column.is_null(row) {
                // A deletion's row: only its identity, `data` NULL.
                out.put_i32(-1);
                out.extend_from_slice(&self.source_type);
                return Ok(());
            }
        }
        let field = begin_field(out);
        out.put_u8(JSONB_VERSION);
        if let ([(index, _)], [column], true) = (&self.data[..], data, self.document) {
            column.write(row, out).map_err(|p| (name(*index), p))?;
            check_jsonb_size(out, id_field, field)?;
            end_field(out, field).map_err(|p| (JSONB_COLUMNS[1], p))?;
            out.extend_from_slice(&self.source_type);
            return Ok(());
        }
        out.put_u8(b'{');
        for ((index, key), column) in self.data.iter().zip(data) {
            out.extend_from_slice(key);
            column.write(row, out).map_err(|p| (name(*index), p))?;
        }
        out.put_u8(b'}');
        check_jsonb_size(out, id_field, field)?;
        end_field(out, field).map_err(|p| (JSONB_COLUMNS[1], p))?;

        out.extend_from_slice(&self.source_type);
        Ok(())
    }
}

/// Refuse a `data` document (the field begun at `data_field`, after the `id` field begun at
/// `id_field`) too big for `jsonb`, naming the row's id and the fix.
fn check_jsonb_size<'a>(
    out: &BytesMut,
    id_field: usize,
    data_field: usize,
) -> Result<(), (&'a str, Problem)> {
    let len = out.len() - data_field - 4 - 1;
    if len <= JSONB_MAX_BYTES {
        return Ok(());
    }
    let id = String::from_utf8_lossy(&out[id_field + 4..data_field]);
    Err((
        JSONB_COLUMNS[1],
        format!(
            "the row with id {id} is a JSON document of {len} bytes, more than the \
             {JSONB_MAX_BYTES} bytes a PostgreSQL jsonb value can hold; copy this table in \
             native mode (--mode native), where each column's value may reach 1 GB"
        ),
    ))
}

impl BatchEncoder for JsonbEncoder {
    /// Appends nothing when a row fails: the error names the table, column and row, and why.
    fn encode(&self, batch: &RecordBatch, out: &mut BytesMut) -> Result<()> {
        let fields = self.schema.fields();
        if batch.num_columns() != fields.len() {
            return Err(schema_mismatch(
                &self.table,
                fields.len(),
                batch.num_columns(),
            ));
        }
        let column = |index: usize| {
            let field = &fields[index];
            JsonColumn::new(field, batch.column(index).as_ref())
                .map_err(|p| column_error(&self.table, field.name(), &p))
        };
        let data =
            (self.data.iter().map(|(index, _)| column(*index))).collect::<Result<Vec<_>>>()?;
        let id = self
            .id
            .iter()
            .map(|&index| column(index))
            .collect::<Result<Vec<_>>>()?;
        let flat = self
            .flat
            .iter()
            .map(|&index| {
                let field = &fields[index];
                NativeColumn::new(field, batch.column(index).as_ref())
                    .map_err(|p| column_error(&self.table, field.name(), &p))
            })
            .collect::<Result<Vec<_>>>()?;

        let rows = batch.num_rows();
        let keys: usize = self.data.iter().map(|(_, key)| key.len()).sum();
        let fixed = 2 + 4 + 12 + 4 + 3 + keys + 8 * data.len() + self.source_type.len();
        let fixed = fixed + flat.iter().map(|c| 4 + c.fixed_width()).sum::<usize>();
        let variable: usize = data.iter().chain(&id).map(JsonColumn::data_len).sum();
        let variable = variable + flat.iter().map(NativeColumn::data_len).sum::<usize>();
        out.reserve(rows * fixed + variable + variable / 8);

        let start = out.len();
        for row in 0..rows {
            if let Err((column, problem)) = self.write_row(&id, &data, &flat, row, out) {
                out.truncate(start);
                return Err(value_error(&self.table, column, row, &problem));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
