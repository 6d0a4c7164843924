//! The Arrow schema a Parquet table is read with: the file footer's schema with a few types
//! widened to ones both encoders write, and a hidden row-number column.
//!
//! | Parquet / Arrow type read | read as |
//! |---|---|
//! | `TIME(MILLIS)` → Time32 | Time64(µs) (`time`) |
//! | Date64 | Date32 (`date`) |
//! | Decimal32, Decimal64 | Decimal128 of the same precision and scale (`numeric(p,s)`) |
//! | Dictionary(_, V) | kept in native mode (written as V's type); V in JSONB mode |
//! | anything else | as is; the type map is `pipeline::types` |

use arrow_array::ArrayRef;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use pipeline::{Error, ErrorKind, Mode, Result, Side};
use std::path::Path;
use std::sync::Arc;

/// The hidden column numbering a table's rows from 0 across its files and row groups, in read
/// order: the row's `id` in JSONB mode (Parquet has no keys).
pub const ROW_COLUMN: &str = "seren:row";

/// The table schema for a file schema: data columns (nullable, so files of one table may
/// differ there) with types as read, then [`ROW_COLUMN`].
pub fn table_schema(table: &str, file: &Schema, mode: Mode) -> Result<SchemaRef> {
    let mut fields = Vec::with_capacity(file.fields().len() + 1);
    for field in file.fields() {
        if field.name() == ROW_COLUMN {
            return Err(Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!(
                    "table \"{table}\": a column is named `{ROW_COLUMN}`, the name this tool \
                     uses for row numbers; rename it in the file"
                ),
            ));
        }
        let field = Field::new(field.name(), read_type(field.data_type(), mode), true)
            .with_metadata(field.metadata().clone());
        fields.push(field);
    }
    fields.push(Field::new(ROW_COLUMN, DataType::Int64, false));
    Ok(Arc::new(Schema::new(fields)))
}

/// The type a column of `data_type` is read as.
fn read_type(data_type: &DataType, mode: Mode) -> DataType {
    match data_type {
        DataType::Time32(_) => DataType::Time64(TimeUnit::Microsecond),
        DataType::Date64 => DataType::Date32,
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        DataType::Dictionary(_, value) if mode == Mode::Jsonb => read_type(value, mode),
        other => other.clone(),
    }
}

/// `column` converted to the type of its table field (a no-op unless `read_type` widened it).
pub fn to_table_type(column: &ArrayRef, field: &Field) -> Result<ArrayRef, ArrowError> {
    if column.data_type() == field.data_type() {
        Ok(column.clone())
    } else {
        arrow_cast::cast(column, field.data_type())
    }
}

/// Check that `other` (the schema of `other_path`) has the columns and types of `first` (the
/// schema of `first_path`), both files of `table`.
pub fn check_same(
    table: &str,
    first: &Schema,
    first_path: &Path,
    other: &Schema,
    other_path: &Path,
) -> Result<()> {
    let describe = |s: &Schema| -> Vec<String> {
        s.fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect()
    };
    let (a, b) = (describe(first), describe(other));
    if a == b {
        return Ok(());
    }
    let difference = match a.iter().zip(&b).find(|(x, y)| x != y) {
        Some((x, y)) => format!("`{x}` in one, `{y}` in the other"),
        None => format!("{} columns in one, {} in the other", a.len(), b.len()),
    };
    Err(Error::new(
        ErrorKind::Schema,
        Side::Source,
        format!(
            "table \"{table}\": files {} and {} have different schemas ({difference}); a \
             directory is loaded as one table, so its files must share one schema: move the odd \
             file out, or load each file as its own table with a glob such as 'DIR/*.parquet'",
            first_path.display(),
            other_path.display()
        ),
    ))
}
