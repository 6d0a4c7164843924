//! The type map: a column's type is inferred from every value in the file, and chosen only when
//! each value reads back as exactly the same text, so nothing is lost.
//!
//! | inferred type | when every non-NULL value … | Arrow type | PostgreSQL (native) | JSONB value |
//! |---|---|---|---|---|
//! | `integer` | is a canonical 64-bit integer (`42`, `-7`; not `007`, `+1`) | Int64 | `bigint` | number |
//! | `real` | is a float that prints back the same (`1.5`, `0.1`, `NaN`; not `1.50`, `1e3`) | Float64 | `double precision` | number (`NaN`, `inf` tagged) |
//! | `boolean` | is `true` or `false` | Boolean | `boolean` | `true` / `false` |
//! | `text` | anything else, or a column with no values | Utf8 | `text` | string |
//!
//! An unquoted empty field is NULL in every type; `""` is the empty string (text columns only:
//! in another type it makes the column text).

use crate::parse::Field;
use pipeline::arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use pipeline::arrow_array::ArrayRef;
use pipeline::arrow_schema::DataType;
use std::sync::Arc;

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// 64-bit integers.
    Integer,
    /// 64-bit floats.
    Real,
    /// `true` / `false`.
    Boolean,
    /// Any text.
    Text,
}

impl ColumnType {
    /// The Arrow type this column is read as.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Integer => DataType::Int64,
            ColumnType::Real => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Text => DataType::Utf8,
        }
    }

    /// The column type an Arrow type stands for (the inverse of [`ColumnType::arrow`]).
    pub fn of_arrow(data_type: &DataType) -> Option<ColumnType> {
        [
            ColumnType::Integer,
            ColumnType::Real,
            ColumnType::Boolean,
            ColumnType::Text,
        ]
        .into_iter()
        .find(|t| &t.arrow() == data_type)
    }

    /// The name shown as the column's source type.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Real => "real",
            ColumnType::Boolean => "boolean",
            ColumnType::Text => "text",
        }
    }
}

fn is_integer(text: &str) -> bool {
    text.parse::<i64>().is_ok_and(|v| v.to_string() == text)
}

fn is_real(text: &str) -> bool {
    text.parse::<f64>().is_ok_and(|v| v.to_string() == text)
}

fn is_boolean(text: &str) -> bool {
    text == "true" || text == "false"
}

/// What the values of one column seen so far allow.
#[derive(Debug, Clone, Copy)]
pub struct Census {
    integer: bool,
    real: bool,
    boolean: bool,
    seen: bool,
}

impl Default for Census {
    fn default() -> Self {
        Census {
            integer: true,
            real: true,
            boolean: true,
            seen: false,
        }
    }
}

impl Census {
    /// Take one value into account.
    pub fn add(&mut self, field: &Field) {
        if field.is_null() {
            return;
        }
        let text = field.text.as_str();
        let typed = !field.quoted || !text.is_empty();
        self.seen = true;
        self.integer &= typed && is_integer(text);
        self.real &= typed && is_real(text);
        self.boolean &= typed && is_boolean(text);
    }

    /// The narrowest type every value seen fits exactly.
    pub fn decide(&self) -> ColumnType {
        match *self {
            Census { seen: false, .. } => ColumnType::Text,
            Census { integer: true, .. } => ColumnType::Integer,
            Census { real: true, .. } => ColumnType::Real,
            Census { boolean: true, .. } => ColumnType::Boolean,
            _ => ColumnType::Text,
        }
    }
}

/// Builds one column of a batch.
pub enum ColumnBuilder {
    /// An Int64 column.
    Integer(Int64Builder),
    /// A Float64 column.
    Real(Float64Builder),
    /// A Boolean column.
    Boolean(BooleanBuilder),
    /// A Utf8 column.
    Text(StringBuilder),
}

impl ColumnBuilder {
    /// An empty builder for a column of type `t`.
    pub fn new(t: ColumnType) -> Self {
        match t {
            ColumnType::Integer => ColumnBuilder::Integer(Int64Builder::new()),
            ColumnType::Real => ColumnBuilder::Real(Float64Builder::new()),
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::new()),
            ColumnType::Text => ColumnBuilder::Text(StringBuilder::new()),
        }
    }

    /// Append one value; an error says why it does not fit (the file changed since `describe`).
    pub fn append(&mut self, field: &Field) -> Result<(), String> {
        let misfit = |t: &str| format!("value {:?} is not {t}", field.text);
        match self {
            ColumnBuilder::Text(b) if field.is_null() => b.append_null(),
            ColumnBuilder::Text(b) => b.append_value(&field.text),
            ColumnBuilder::Integer(b) if field.is_null() => b.append_null(),
            ColumnBuilder::Integer(b) => match field.text.parse::<i64>() {
                Ok(v) if is_integer(&field.text) => b.append_value(v),
                _ => return Err(misfit("an integer")),
            },
            ColumnBuilder::Real(b) if field.is_null() => b.append_null(),
            ColumnBuilder::Real(b) => match field.text.parse::<f64>() {
                Ok(v) if is_real(&field.text) => b.append_value(v),
                _ => return Err(misfit("a real number")),
            },
            ColumnBuilder::Boolean(b) if field.is_null() => b.append_null(),
            ColumnBuilder::Boolean(b) if is_boolean(&field.text) => {
                b.append_value(field.text == "true")
            }
            ColumnBuilder::Boolean(_) => return Err(misfit("true or false")),
        }
        Ok(())
    }

    /// The column built so far; the builder starts over empty.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Integer(b) => Arc::new(b.finish()),
            ColumnBuilder::Real(b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(values: &[(&str, bool)]) -> ColumnType {
        let mut census = Census::default();
        for (text, quoted) in values {
            census.add(&Field {
                text: text.to_string(),
                quoted: *quoted,
            });
        }
        census.decide()
    }

    #[test]
    fn only_exact_round_trips_choose_a_type() {
        assert_eq!(
            infer(&[("1", false), ("-7", false), ("", false)]),
            ColumnType::Integer
        );
        assert_eq!(infer(&[("1", false), ("1.5", false)]), ColumnType::Real);
        assert_eq!(infer(&[("1.50", false)]), ColumnType::Text);
        assert_eq!(infer(&[("007", false)]), ColumnType::Text);
        assert_eq!(
            infer(&[("true", false), ("false", true)]),
            ColumnType::Boolean
        );
        assert_eq!(infer(&[("1", false), ("", true)]), ColumnType::Text);
        assert_eq!(infer(&[("", false)]), ColumnType::Text);
    }
}
