//! Reading CSV records (RFC 4180): comma-separated fields, optionally in double quotes, `""` for
//! a quote inside quotes, line breaks inside quoted fields, `\n` or `\r\n` line ends.
//!
//! An unquoted empty field is NULL; a quoted empty field (`""`) is the empty string. Blank lines
//! are skipped. Every record remembers its first line (for messages); [`Records::offset`] is where
//! the next one starts, so a plan can cut the file between records.

use pipeline::{Error, ErrorKind, Result, Side};
use std::io::BufRead;

/// One field of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's text, quotes removed.
    pub text: String,
    /// Whether it was quoted (which tells `""`, the empty string, from NULL).
    pub quoted: bool,
}

impl Field {
    /// Whether this field is NULL: empty and unquoted.
    pub fn is_null(&self) -> bool {
        self.text.is_empty() && !self.quoted
    }
}

/// A record and where it sits in its file.
#[derive(Debug)]
pub struct Record {
    /// The fields, in column order.
    pub fields: Vec<Field>,
    /// The line the record starts on (from 1), for messages.
    pub line: u64,
}

/// Records read one at a time from a buffered reader (memory: one record).
pub struct Records<R> {
    reader: R,
    /// The file, as messages show it.
    file: String,
    /// Byte offset of the next unread byte.
    offset: u64,
    /// Lines read so far.
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Records<R> {
    /// Records from `reader`, positioned at byte `offset`, after `line` lines of `file`.
    pub fn new(reader: R, file: String, offset: u64, line: u64) -> Self {
        Records {
            reader,
            file,
            offset,
            line,
            buf: Vec::new(),
        }
    }

    /// The byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        loop {
            self.buf.clear();
            let first_line = self.line + 1;
            loop {
                let n = self.reader.read_until(b'\n', &mut self.buf).map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        Side::Source,
                        format!("reading {}: {e}", self.file),
                    )
                    .with_cause(e)
                })?;
                if n == 0 {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    return Err(self.malformed(first_line, "a quoted field is never closed"));
                }
                self.offset += n as u64;
                self.line += 1;
                // An odd number of quotes so far means a quoted field goes on to the next line.
                let quotes = self.buf.iter().filter(|&&b| b == b'"').count();
                if quotes % 2 == 0 || !self.buf.ends_with(b"\n") {
                    if quotes % 2 == 1 {
                        return Err(self.malformed(first_line, "a quoted field is never closed"));
                    }
                    break;
                }
            }
            let mut bytes = &self.buf[..];
            bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            if bytes.is_empty() {
                continue; // a blank line
            }
            let fields = split(bytes).map_err(|problem| self.malformed(first_line, &problem))?;
            return Ok(Some(Record {
                fields,
                line: first_line,
            }));
        }
    }

    fn malformed(&self, line: u64, problem: &str) -> Error {
        Error::new(
            ErrorKind::Conversion,
            Side::Source,
            format!(
                "{} line {line}: {problem}; fix the file (RFC 4180 CSV, UTF-8)",
                self.file
            ),
        )
    }
}

/// The fields of one record's bytes (line end removed).
fn split(bytes: &[u8]) -> std::result::Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    let (mut text, mut quoted, mut in_quotes) = (Vec::new(), false, false);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'"' if bytes.get(i + 1) == Some(&b'"') => {
                    text.push(b'"');
                    i += 1;
                }
                b'"' => in_quotes = false,
                _ => text.push(b),
            }
        } else {
            match b {
                b',' => fields.push(field(std::mem::take(&mut text), quoted, fields.len())?),
                b'"' if text.is_empty() && !quoted => in_quotes = true,
                _ if quoted => {
                    return Err(format!(
                        "field {} has text after its closing quote",
                        fields.len() + 1
                    ))
                }
                b'"' => {
                    return Err(format!(
                        "field {} has a quote inside an unquoted value; quote the whole field \
                         and double the quote",
                        fields.len() + 1
                    ))
                }
                _ => text.push(b),
            }
            if b == b',' {
                quoted = false;
            } else if in_quotes {
                quoted = true;
            }
        }
        i += 1;
    }
    fields.push(field(text, quoted, fields.len())?);
    Ok(fields)
}

fn field(text: Vec<u8>, quoted: bool, index: usize) -> std::result::Result<Field, String> {
    let text = String::from_utf8(text).map_err(|_| {
        format!(
            "field {} is not valid UTF-8; convert the file to UTF-8",
            index + 1
        )
    })?;
    Ok(Field { text, quoted })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(csv: &str) -> Vec<Vec<(String, bool)>> {
        let mut records = Records::new(csv.as_bytes(), "t.csv".into(), 0, 0);
        let mut out = Vec::new();
        while let Some(r) = records.next_record().unwrap() {
            out.push(r.fields.into_iter().map(|f| (f.text, f.quoted)).collect());
        }
        out
    }

    #[test]
    fn quotes_line_breaks_and_nulls() {
        let rows = read("a,b\r\n\"x,\"\"y\"\"\",\n\n\"multi\nline\",\"\"\n");
        let f = |s: &str, q| (s.to_string(), q);
        assert_eq!(rows[0], vec![f("a", false), f("b", false)]);
        assert_eq!(rows[1], vec![f("x,\"y\"", true), f("", false)]);
        assert_eq!(rows[2], vec![f("multi\nline", true), f("", true)]);
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn malformed_input_names_the_line() {
        let mut r = Records::new("a\n\"open\n".as_bytes(), "t.csv".into(), 0, 0);
        r.next_record().unwrap();
        let e = r.next_record().unwrap_err();
        assert!(
            e.message()
                .contains("t.csv line 2: a quoted field is never closed"),
            "{e}"
        );
        let mut r = Records::new("a\"b\"\n".as_bytes(), "t.csv".into(), 0, 0);
        assert!(r
            .next_record()
            .unwrap_err()
            .message()
            .contains("quote inside"));
    }
}
