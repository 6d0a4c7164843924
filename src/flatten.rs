//! Which fields of which collections also become typed columns: `--flatten
//! COLLECTION:FIELD=TYPE[,FIELD=TYPE…]` flags merged over the `[collections.NAME]` sections of a
//! `--config` TOML file (`columns = { email = "text", age = "int" }`). A flag replaces the file's
//! columns for the same collection. MongoDB sources only.

use crate::cli::{Layout, Selection};
use pipeline::{Error, FlatColumn, Result, SourceFactory, TableInfo};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Flat columns by collection.
pub type Flatten = BTreeMap<String, Vec<FlatColumn>>;

/// A `--config` file as a MongoDB source reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    collections: BTreeMap<String, Collection>,
}

/// One `[collections.NAME]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Collection {
    /// Field name → column type.
    #[serde(default)]
    columns: toml::Table,
}

/// The flat columns `layout` and `selection` ask of the source at `source` (a URL or path).
pub fn columns(layout: &Layout, selection: &Selection, source: &str) -> Result<Flatten> {
    if crate::session::is_postgres(source) {
        // PostgreSQL sources read `--config` themselves (`crate::rules`).
        return match layout.flatten.is_empty() {
            true => Ok(Flatten::new()),
            false => Err(Error::config(
                "--flatten applies to MongoDB sources only: PostgreSQL tables keep their own \
                 typed columns",
            )),
        };
    }
    let mongodb = seren_mongodb::MongoFactory.accepts(source);
    let mut flatten = Flatten::new();
    if let Some(path) = &selection.config {
        if !mongodb {
            return Err(Error::config(
                "--config applies to PostgreSQL sources (`[databases.NAME]` sections) and \
                 MongoDB sources (`[collections.NAME]` sections) only",
            ));
        }
        flatten = from_file(path)?;
    }
    for flag in &layout.flatten {
        let (collection, columns) = parse_flag(flag)?;
        flatten.insert(collection, columns);
    }
    if !flatten.is_empty() && !mongodb {
        return Err(Error::config(
            "--flatten applies to MongoDB sources only: other sources' tables already have typed \
             columns in native mode (--mode native)",
        ));
    }
    flatten.retain(|_, columns| !columns.is_empty());
    Ok(flatten)
}

/// Refuse flat columns for collections that are not copied (unknown, or not selected).
pub fn check_selected(flatten: &Flatten, selected: &[(TableInfo, Option<String>)]) -> Result<()> {
    for collection in flatten.keys() {
        if !selected.iter().any(|(t, _)| &t.name == collection) {
            return Err(Error::config(format!(
                "--flatten names collection `{collection}`, which is not copied: it is not in the \
                 source, or not selected (check --include-tables and --exclude-tables)"
            )));
        }
    }
    Ok(())
}

/// `COLLECTION:FIELD=TYPE[,FIELD=TYPE…]`.
fn parse_flag(flag: &str) -> Result<(String, Vec<FlatColumn>)> {
    let bad = |why: String| {
        Error::config(format!(
            "--flatten {flag}: {why}; write COLLECTION:FIELD=TYPE[,FIELD=TYPE…], e.g. \
             users:email=text,age=int (types: {})",
            FlatColumn::TYPES
        ))
    };
    let (collection, list) = flag
        .split_once(':')
        .ok_or_else(|| bad("no `:` after the collection name".into()))?;
    if collection.is_empty() {
        return Err(bad("the collection name is empty".into()));
    }
    let mut columns = Vec::new();
    for item in list.split(',') {
        let (field, ty) = item
            .split_once('=')
            .ok_or_else(|| bad(format!("`{item}` has no `=TYPE`")))?;
        columns.push(FlatColumn::parse(field, ty).map_err(bad)?);
    }
    Ok((collection.to_string(), columns))
}

/// The `[collections.NAME] columns` of a config file.
fn from_file(path: &Path) -> Result<Flatten> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read --config {shown}: {e}")))?;
    let config: Config = toml::from_str(&text).map_err(|e| {
        Error::config(format!(
            "--config {shown} is not a valid MongoDB config: {e}; write sections like \
             [collections.users] with columns = {{ email = \"text\", age = \"int\" }}"
        ))
    })?;
    let mut flatten = Flatten::new();
    for (collection, section) in config.collections {
        let mut columns = Vec::new();
        for (field, ty) in section.columns {
            let column = ty
                .as_str()
                .ok_or_else(|| format!("field `{field}`: the type must be a string"))
                .and_then(|ty| FlatColumn::parse(&field, ty))
                .map_err(|why| {
                    Error::config(format!(
                        "--config {shown}, [collections.{collection}] columns: {why}"
                    ))
                })?;
            columns.push(column);
        }
        flatten.insert(collection, columns);
    }
    Ok(flatten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_lists_fields_and_types() {
        let (collection, columns) = parse_flag("users:email=text,age=int").unwrap();
        assert_eq!(collection, "users");
        let got: Vec<(String, String)> = columns.into_iter().map(Into::into).collect();
        assert_eq!(
            got,
            [
                ("email".to_string(), "text".to_string()),
                ("age".to_string(), "integer".to_string())
            ]
        );
    }

    #[test]
    fn bad_flags_say_how_to_write_them() {
        for (flag, says) in [
            ("users", "no `:`"),
            (":a=text", "collection name is empty"),
            ("users:email", "has no `=TYPE`"),
            ("users:age=integr", "unknown column type `integr`"),
        ] {
            let e = parse_flag(flag).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("COLLECTION:FIELD=TYPE"),
                "{flag}: {e}"
            );
        }
    }

    #[test]
    fn the_config_file_gives_columns_and_rejects_unknown_sections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mongo.toml");
        std::fs::write(
            &path,
            "[collections.users]\ncolumns = { email = \"text\", age = \"bigint\" }\n",
        )
        .unwrap();
        let got = from_file(&path).unwrap();
        let names: Vec<&str> = got["users"].iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"email") && names.contains(&"age"));

        std::fs::write(&path, "[databases.app]\ninclude_tables = [\"x\"]\n").unwrap();
        let e = from_file(&path).unwrap_err().to_string();
        assert!(e.contains("unknown field `databases`"), "{e}");
    }
}
