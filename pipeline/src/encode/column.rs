//! Typed views of Arrow string and binary arrays, downcast once per batch so the per-value loop
//! reads slices directly instead of going through `dyn Array`.

use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, Float16Type};
use arrow_array::{
    Array, BinaryViewArray, FixedSizeBinaryArray, LargeBinaryArray, LargeStringArray, StringArray,
    StringViewArray,
};
use arrow_schema::DataType;

/// Arrow's half-precision float.
pub(crate) type F16 = <Float16Type as ArrowPrimitiveType>::Native;

/// A string column of any of Arrow's three layouts.
pub(crate) enum StrCol<'a> {
    /// `Utf8`: 32-bit offsets.
    Utf8(&'a StringArray),
    /// `LargeUtf8`: 64-bit offsets.
    Large(&'a LargeStringArray),
    /// `Utf8View`: inline or referenced views.
    View(&'a StringViewArray),
}

impl<'a> StrCol<'a> {
    /// The string view of `array`, or `None` when it is not a string array.
    pub(crate) fn new(array: &'a dyn Array) -> Option<Self> {
        match array.data_type() {
            DataType::Utf8 => array.as_string_opt::<i32>().map(StrCol::Utf8),
            DataType::LargeUtf8 => array.as_string_opt::<i64>().map(StrCol::Large),
            DataType::Utf8View => array.as_string_view_opt().map(StrCol::View),
            _ => None,
        }
    }

    /// The string at row `i`.
    #[inline]
    pub(crate) fn value(&self, i: usize) -> &'a str {
        match self {
            StrCol::Utf8(a) => a.value(i),
            StrCol::Large(a) => a.value(i),
            StrCol::View(a) => a.value(i),
        }
    }

    /// Bytes of string data the column's rows hold (for sizing the output buffer).
    pub(crate) fn data_len(&self) -> usize {
        match self {
            StrCol::Utf8(a) => offsets_span(a.value_offsets()),
            StrCol::Large(a) => offsets_span(a.value_offsets()),
            StrCol::View(a) => a.total_bytes_len(),
        }
    }
}

/// A binary column of any of Arrow's four layouts.
pub(crate) enum BinCol<'a> {
    /// `Binary`: 32-bit offsets.
    Binary(&'a arrow_array::BinaryArray),
    /// `LargeBinary`: 64-bit offsets.
    Large(&'a LargeBinaryArray),
    /// `BinaryView`: inline or referenced views.
    View(&'a BinaryViewArray),
    /// `FixedSizeBinary(n)`.
    Fixed(&'a FixedSizeBinaryArray),
}

impl<'a> BinCol<'a> {
    /// The binary view of `array`, or `None` when it is not a binary array.
    pub(crate) fn new(array: &'a dyn Array) -> Option<Self> {
        match array.data_type() {
            DataType::Binary => array.as_binary_opt::<i32>().map(BinCol::Binary),
            DataType::LargeBinary => array.as_binary_opt::<i64>().map(BinCol::Large),
            DataType::BinaryView => array.as_binary_view_opt().map(BinCol::View),
            DataType::FixedSizeBinary(_) => array.as_fixed_size_binary_opt().map(BinCol::Fixed),
            _ => None,
        }
    }

    /// The bytes at row `i`.
    #[inline]
    pub(crate) fn value(&self, i: usize) -> &'a [u8] {
        match self {
            BinCol::Binary(a) => a.value(i),
            BinCol::Large(a) => a.value(i),
            BinCol::View(a) => a.value(i),
            BinCol::Fixed(a) => a.value(i),
        }
    }

    /// Bytes of binary data the column's rows hold (for sizing the output buffer).
    pub(crate) fn data_len(&self) -> usize {
        match self {
            BinCol::Binary(a) => offsets_span(a.value_offsets()),
            BinCol::Large(a) => offsets_span(a.value_offsets()),
            BinCol::View(a) => a.total_bytes_len(),
            BinCol::Fixed(a) => a.len() * a.value_length().max(0) as usize,
        }
    }
}

fn offsets_span<O: arrow_array::OffsetSizeTrait>(offsets: &[O]) -> usize {
    match (offsets.first(), offsets.last()) {
        (Some(first), Some(last)) => (*last - *first).as_usize(),
        _ => 0,
    }
}
