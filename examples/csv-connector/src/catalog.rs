//! The catalog of a CSV file: its header, a census of every value (the inferred types), the row
//! count, and the record boundaries a plan cuts at. One streaming pass; memory holds one record.

use crate::parse::{Record, Records};
use crate::types::{Census, ColumnType};
use pipeline::{Error, ErrorKind, Result, Side};
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

/// Where a data record starts: for cutting a file into partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Byte offset of the record.
    pub offset: u64,
    /// Lines before it.
    pub line: u64,
    /// Data records before it.
    pub row: u64,
}

/// What one pass over a file finds.
#[derive(Debug)]
pub struct Scan {
    /// Column names from the header.
    pub names: Vec<String>,
    /// The inferred type of each column.
    pub types: Vec<ColumnType>,
    /// Data records.
    pub rows: u64,
    /// The start of the first data record, then of every `every`-th one.
    pub marks: Vec<Mark>,
    /// The end of the last record.
    pub end: u64,
}

/// Open `path` positioned at `offset`, after `line` lines.
pub fn records(path: &Path, offset: u64, line: u64) -> Result<Records<BufReader<File>>> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| {
        let what = format!("cannot read {shown}: {e}; check the file and its permissions");
        Error::new(ErrorKind::Io, Side::Source, what).with_cause(e)
    };
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    Ok(Records::new(
        BufReader::with_capacity(256 << 10, file),
        shown,
        offset,
        line,
    ))
}

/// Read the header of `path`: column names (a UTF-8 byte-order mark dropped), which must be
/// present, non-empty and distinct.
fn header(records: &mut Records<BufReader<File>>, path: &Path) -> Result<Vec<String>> {
    let schema_error = |problem: String| {
        Error::new(
            ErrorKind::Schema,
            Side::Source,
            format!("{}: {problem}", path.display()),
        )
    };
    let Some(Record { fields, .. }) = records.next_record()? else {
        return Err(schema_error(
            "the file is empty; a CSV table needs a header line with its column names".into(),
        ));
    };
    let mut names: Vec<String> = fields.into_iter().map(|f| f.text).collect();
    if let Some(first) = names.first_mut() {
        *first = first.trim_start_matches('\u{feff}').to_string();
    }
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(schema_error(format!(
                "column {} of the header has no name",
                i + 1
            )));
        }
        if names[..i].contains(name) {
            return Err(schema_error(format!(
                "the header names column \"{name}\" twice"
            )));
        }
    }
    Ok(names)
}

/// Scan the whole file, marking every `every`-th data record.
pub fn scan(path: &Path, every: u64) -> Result<Scan> {
    let mut records = records(path, 0, 0)?;
    let names = header(&mut records, path)?;
    let mut census = vec![Census::default(); names.len()];
    let (mut marks, mut rows) = (Vec::new(), 0u64);
    loop {
        let mark = Mark {
            offset: records.offset(),
            line: records.lines(),
            row: rows,
        };
        let Some(record) = records.next_record()? else {
            break;
        };
        if rows % every.max(1) == 0 {
            marks.push(mark);
        }
        check_width(path, &record, names.len())?;
        for (c, field) in census.iter_mut().zip(&record.fields) {
            c.add(field);
        }
        rows += 1;
    }
    Ok(Scan {
        types: census.iter().map(Census::decide).collect(),
        names,
        rows,
        marks,
        end: records.offset(),
    })
}

/// Every record must have one field per header column.
pub fn check_width(path: &Path, record: &Record, columns: usize) -> Result<()> {
    if record.fields.len() == columns {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Conversion,
        Side::Source,
        format!(
            "{} line {}: {} field(s) where the header has {columns}; fix the line (quote values \
             that contain commas)",
            path.display(),
            record.line,
            record.fields.len()
        ),
    ))
}
