//! Arrow → PostgreSQL COPY BINARY encoders, hand-written for speed: each batch is encoded in one
//! pass, with every column's Arrow array downcast once per batch rather than once per value.
//!
//! The COPY stream is `COPY_HEADER`, then tuples, then `COPY_TRAILER`. Encoders append tuples
//! only; the writer sends the header and trailer.

mod jsonb;
mod native;

pub use jsonb::{JsonbEncoder, JSONB_COLUMNS};
pub use native::{native_columns, NativeEncoder};

/// The 19-byte header that opens a binary COPY stream (signature, flags, extension length).
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer that closes a binary COPY stream (a field count of -1).
pub const COPY_TRAILER: &[u8] = &[0xff, 0xff];
