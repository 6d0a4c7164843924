//! Rows as comparable values: a canonical text key per Arrow row (to compare multisets of rows
//! read in different batchings), and COPY-binary tuples decoded back into fields.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

/// One decoded COPY tuple: each field's bytes in PostgreSQL's binary format, `None` for NULL.
pub type Tuple = Vec<Option<Vec<u8>>>;

/// A key per row of `batch` that is equal for two rows exactly when their values are equal,
/// whatever the batch boundaries, slicing offsets, dictionary or union layout. Floats compare
/// by bit pattern, so NaN equals NaN and `-0.0` differs from `0.0`.
pub fn row_keys(batch: &RecordBatch) -> Vec<String> {
    (0..batch.num_rows())
        .map(|row| {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|column| cell(column.as_ref(), row))
                .collect();
            cells.join(" | ")
        })
        .collect()
}

/// The canonical text of one value.
fn cell(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    match array.data_type() {
        DataType::Float16 => {
            let v = array
                .as_primitive::<arrow_array::types::Float16Type>()
                .value(row);
            format!("f16:{:#06x}", v.to_bits())
        }
        DataType::Float32 => {
            let v = array
                .as_primitive::<arrow_array::types::Float32Type>()
                .value(row);
            format!("f32:{:#010x}", v.to_bits())
        }
        DataType::Float64 => {
            let v = array
                .as_primitive::<arrow_array::types::Float64Type>()
                .value(row);
            format!("f64:{:#018x}", v.to_bits())
        }
        DataType::Dictionary(..) => {
            let dict = array.as_any_dictionary();
            cell(dict.values().as_ref(), dict.normalized_keys()[row])
        }
        DataType::Union(..) => {
            let union = array.as_union();
            format!(
                "#{}:{}",
                union.type_id(row),
                cell(union.value(row).as_ref(), 0)
            )
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let parts: Vec<String> = fields
                .iter()
                .zip(s.columns())
                .map(|(f, c)| format!("{}={}", f.name(), cell(c.as_ref(), row)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::List(_) => list(array.as_list::<i32>().value(row).as_ref()),
        DataType::LargeList(_) => list(array.as_list::<i64>().value(row).as_ref()),
        DataType::FixedSizeList(..) => list(array.as_fixed_size_list().value(row).as_ref()),
        // Leaf types: the debug form of a one-row slice prints exactly that value.
        _ => {
            let text = format!("{:?}", array.slice(row, 1));
            let start = text.find('[').map_or(0, |i| i + 1);
            let end = text.rfind(']').unwrap_or(text.len());
            text[start..end].trim().trim_end_matches(',').to_string()
        }
    }
}

fn list(values: &dyn Array) -> String {
    let items: Vec<String> = (0..values.len()).map(|i| cell(values, i)).collect();
    format!("[{}]", items.join(", "))
}

/// Split COPY-binary tuples (no header or trailer) into fields, checking the framing: every
/// tuple has `expected_fields` fields and no length runs past the end.
pub fn decode_tuples(mut bytes: &[u8], expected_fields: usize) -> Result<Vec<Tuple>, String> {
    let mut tuples = Vec::new();
    while !bytes.is_empty() {
        let at = tuples.len();
        let count = take(&mut bytes, 2, at)?;
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count as usize != expected_fields {
            return Err(format!(
                "tuple {at} has {count} fields where the table has {expected_fields}"
            ));
        }
        let mut fields = Vec::with_capacity(expected_fields);
        for _ in 0..count {
            let len = take(&mut bytes, 4, at)?;
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            match len {
                -1 => fields.push(None),
                n if n < 0 => return Err(format!("tuple {at} has a field of length {n}")),
                n => fields.push(Some(take(&mut bytes, n as usize, at)?.to_vec())),
            }
        }
        tuples.push(fields);
    }
    Ok(tuples)
}

fn take<'a>(bytes: &mut &'a [u8], n: usize, tuple: usize) -> Result<&'a [u8], String> {
    if bytes.len() < n {
        return Err(format!("tuple {tuple} is cut short"));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Float64Array, Int32Array, StringArray};
    use std::sync::Arc;

    fn batch(ints: Vec<Option<i32>>, floats: Vec<f64>) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("i", Arc::new(Int32Array::from(ints)) as ArrayRef),
            ("f", Arc::new(Float64Array::from(floats)) as ArrayRef),
        ])
        .unwrap()
    }

    #[test]
    fn keys_ignore_slicing_and_tell_values_apart() {
        let b = batch(vec![Some(1), None, Some(3)], vec![f64::NAN, -0.0, 0.0]);
        let keys = row_keys(&b);
        assert_eq!(row_keys(&b.slice(1, 2)), keys[1..].to_vec());
        assert_ne!(keys[1], keys[2], "-0.0 and 0.0 must differ");
        assert_eq!(keys[0], row_keys(&batch(vec![Some(1)], vec![f64::NAN]))[0]);
        assert!(keys[1].starts_with("NULL"));
        let s = RecordBatch::try_from_iter([(
            "s",
            Arc::new(StringArray::from(vec!["a, b", "a", " b"])) as ArrayRef,
        )])
        .unwrap();
        let keys = row_keys(&s);
        assert_ne!(keys[1], keys[2]);
        assert!(keys[0].contains("a, b"), "{keys:?}");
    }

    #[test]
    fn decode_checks_framing() {
        let mut bytes = vec![0, 2, 0, 0, 0, 1, 7, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            decode_tuples(&bytes, 2).unwrap(),
            vec![vec![Some(vec![7]), None]]
        );
        assert!(decode_tuples(&bytes, 3).unwrap_err().contains("2 fields"));
        bytes.pop();
        assert!(decode_tuples(&bytes, 2).unwrap_err().contains("cut short"));
    }
}
