//! From a location to tables: which Parquet files make up which table.
//!
//! - a file → one table named after the file's stem;
//! - a glob (`data/*.parquet`) → one table per matched file (or matched directory);
//! - a directory → one table named after the directory holding the `.parquet` files directly in
//!   it (they must share one schema), plus one table per subdirectory holding `.parquet` files
//!   (the layout `export` writes: `out/<table>/part-00000.parquet` …).
//!
//! Files of a table are read in name order, so row numbers are stable from run to run.

use pipeline::{Error, ErrorKind, Result, Side};
use std::path::{Path, PathBuf};

/// The file extension of Parquet files found in directories.
const EXTENSION: &str = "parquet";

/// One table: its name and its files, in read order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFiles {
    /// Table name (file stem or directory name).
    pub name: String,
    /// The files, sorted by path.
    pub files: Vec<PathBuf>,
}

/// Whether `location` contains glob wildcards.
pub fn is_glob(location: &str) -> bool {
    location.contains(['*', '?', '['])
}

/// The tables at `location` (a file, a directory or a glob), sorted by name. Errors name the
/// location and say what to do; two tables with one name are an error.
pub fn tables(location: &str) -> Result<Vec<TableFiles>> {
    let mut found = Vec::new();
    if is_glob(location) {
        let paths = glob::glob(location).map_err(|e| {
            Error::config(format!(
                "source `{location}` is not a valid glob pattern: {e}"
            ))
        })?;
        for path in paths {
            let path = path.map_err(|e| io_error(location, e.into()))?;
            if path.is_dir() {
                found.extend(directory(&path)?);
            } else {
                found.push(file(&path));
            }
        }
        if found.is_empty() {
            return Err(Error::config(format!(
                "source `{location}` matches no files; check the pattern and the directory"
            )));
        }
    } else {
        let path = Path::new(location);
        let meta = std::fs::metadata(path).map_err(|e| io_error(location, e))?;
        if meta.is_dir() {
            found = directory(path)?;
            if found.is_empty() {
                return Err(Error::config(format!(
                    "directory `{location}` holds no .{EXTENSION} files, neither directly nor \
                     in its subdirectories"
                )));
            }
        } else {
            found.push(file(path));
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in found.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(Error::config(format!(
                "source `{location}` yields two tables named \"{}\" ({} and {}); select files \
                 with distinct names, or load them in separate runs",
                pair[0].name,
                pair[0].files[0].display(),
                pair[1].files[0].display()
            )));
        }
    }
    Ok(found)
}

/// A single file as a table.
fn file(path: &Path) -> TableFiles {
    TableFiles {
        name: stem(path),
        files: vec![path.to_path_buf()],
    }
}

/// The tables of a directory: itself when it holds Parquet files, and each subdirectory that
/// does.
fn directory(dir: &Path) -> Result<Vec<TableFiles>> {
    let mut tables = Vec::new();
    let (files, subdirs) = listing(dir)?;
    if !files.is_empty() {
        tables.push(TableFiles {
            name: stem(dir),
            files,
        });
    }
    for sub in subdirs {
        let (files, _) = listing(&sub)?;
        if !files.is_empty() {
            tables.push(TableFiles {
                name: stem(&sub),
                files,
            });
        }
    }
    Ok(tables)
}

/// The `.parquet` files and the subdirectories of `dir`, each sorted.
fn listing(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let shown = dir.display().to_string();
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(&shown, e))? {
        let path = entry.map_err(|e| io_error(&shown, e))?.path();
        if path.is_dir() {
            dirs.push(path);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(EXTENSION))
        {
            files.push(path);
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// A file's name without its extension, or a directory's decoded name, lossily as UTF-8.
fn stem(path: &Path) -> String {
    let path = if path.file_name().is_none() {
        // `./data/` or `.`: name the table after the directory itself.
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    if path.is_dir() {
        // Directories written by `export` percent-encode characters paths cannot hold.
        let name = path.file_name().map(|n| n.to_string_lossy());
        return crate::sink::table_name(name.as_deref().unwrap_or("parquet"));
    }
    path.file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "parquet".into())
}

fn io_error(location: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Connect,
        Side::Source,
        format!("cannot read Parquet source `{location}`: {e}"),
    )
    .with_cause(e)
    .retryable(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn files_directories_and_globs_name_tables() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("data/users.parquet"));
        touch(&root.join("data/orders.parquet"));
        touch(&root.join("data/notes.txt"));
        touch(&root.join("out/items/part-00001.parquet"));
        touch(&root.join("out/items/part-00000.parquet"));
        touch(&root.join("out/empty/readme.txt"));

        let one = tables(root.join("data/users.parquet").to_str().unwrap()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name, "users");

        let glob = format!("{}/data/*.parquet", root.display());
        let names: Vec<_> = tables(&glob).unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["orders", "users"]);

        let out = tables(root.join("out").to_str().unwrap()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "items");
        let files: Vec<_> = out[0]
            .files
            .iter()
            .map(|f| f.file_name().unwrap())
            .collect();
        assert_eq!(files, ["part-00000.parquet", "part-00001.parquet"]);

        let data = tables(&format!("{}/data/", root.display())).unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(data[0].name, "data");
        assert_eq!(data[0].files.len(), 2);
    }

    #[test]
    fn empty_matches_and_duplicate_names_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let none = tables(&format!("{}/*.parquet", root.display())).unwrap_err();
        assert!(none.message().contains("matches no files"), "{none}");
        touch(&root.join("a/t.parquet"));
        touch(&root.join("b/t.parquet"));
        let dup = tables(&format!("{}/*/t.parquet", root.display())).unwrap_err();
        assert!(dup.message().contains("two tables named \"t\""), "{dup}");
        let missing = tables(root.join("nope.parquet").to_str().unwrap()).unwrap_err();
        assert!(missing.message().contains("nope.parquet"), "{missing}");
    }
}
