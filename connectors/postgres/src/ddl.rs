//! SQL text for the target: quoted identifiers, table layouts, index and constraint names.

use pipeline::encode::native_columns;
use pipeline::{Error, Mode, Result, TableInfo};

/// PostgreSQL's identifier limit in bytes (NAMEDATALEN - 1); longer names are truncated by the
/// server, so two long names could silently collide.
pub const MAX_IDENT_BYTES: usize = 63;

/// `name` as a double-quoted identifier, embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as a single-quoted SQL string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// Check a source name can be a PostgreSQL identifier as is.
pub fn check_ident(what: &str, name: &str) -> Result<()> {
    if name.contains('\0') {
        return Err(Error::config(format!(
            "{what} \"{}\" contains a NUL character, which PostgreSQL identifiers cannot hold; \
             exclude it with --exclude-tables",
            name.escape_debug()
        )));
    }
    if name.len() > MAX_IDENT_BYTES {
        return Err(Error::config(format!(
            "{what} \"{name}\" is {} bytes long, over PostgreSQL's {MAX_IDENT_BYTES}-byte limit; \
             rename it in the source or exclude it with --exclude-tables",
            name.len()
        )));
    }
    Ok(())
}

/// A name built from `parts` joined by `_`, cut to fit PostgreSQL's limit; when cut, a short
/// hash of the full name keeps different long names apart.
pub fn derived_name(parts: &[&str]) -> String {
    let full = parts.join("_");
    if full.len() <= MAX_IDENT_BYTES {
        return full;
    }
    let hash = fnv1a(full.as_bytes());
    let suffix = format!("_{hash:08x}");
    let mut cut = MAX_IDENT_BYTES - suffix.len();
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &full[..cut])
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c9dc5u32, |h, b| {
        (h ^ *b as u32).wrapping_mul(0x01000193)
    })
}

/// Column definitions (`"name" type [NOT NULL]`) and the COPY column list for `table`.
pub struct Layout {
    /// `CREATE TABLE` column definitions.
    pub definitions: Vec<String>,
    /// Columns the COPY stream fills, quoted, in tuple order.
    pub copy_columns: Vec<String>,
}

/// The target layout of `table` in `mode`.
pub fn layout(table: &TableInfo, mode: Mode, source_type: &str) -> Result<Layout> {
    match mode {
        Mode::Jsonb => {
            let columns = pipeline::encode::jsonb_columns(table)?;
            let flat = &columns[pipeline::encode::JSONB_COLUMNS.len()..];
            let mut definitions = vec!["\"id\" text NOT NULL".to_string()];
            for (name, ty) in flat {
                check_ident(&format!("column of table \"{}\"", table.name), name)?;
                definitions.push(format!("{} {}", quote_ident(name), ty.sql_name()));
            }
            definitions.extend([
                "\"data\" jsonb NOT NULL".into(),
                format!(
                    "\"_source_type\" text NOT NULL DEFAULT {}",
                    quote_literal(source_type)
                ),
                "\"_migrated_at\" timestamptz NOT NULL DEFAULT now()".into(),
            ]);
            Ok(Layout {
                definitions,
                copy_columns: columns.iter().map(|(c, _)| quote_ident(c)).collect(),
            })
        }
        Mode::Native => {
            let cols = native_columns(table)?;
            let mut definitions = Vec::with_capacity(cols.len());
            let mut copy_columns = Vec::with_capacity(cols.len());
            for (name, ty) in &cols {
                check_ident(&format!("column of table \"{}\"", table.name), name)?;
                let nullable = table
                    .columns
                    .iter()
                    .find(|c| &c.name == name)
                    .is_none_or(|c| c.nullable);
                definitions.push(format!(
                    "{} {}{}",
                    quote_ident(name),
                    ty.sql_name(),
                    if nullable { "" } else { " NOT NULL" }
                ));
                copy_columns.push(quote_ident(name));
            }
            Ok(Layout {
                definitions,
                copy_columns,
            })
        }
    }
}

/// A quoted, comma-separated column list.
pub fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_handles_quotes_and_unicode() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("Ünïcode table"), "\"Ünïcode table\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn derived_names_fit_and_stay_distinct() {
        let long_a = "é".repeat(40);
        let long_b = format!("{}x", "é".repeat(40));
        let a = derived_name(&[&long_a, "pkey"]);
        let b = derived_name(&[&long_b, "pkey"]);
        assert!(a.len() <= MAX_IDENT_BYTES && b.len() <= MAX_IDENT_BYTES);
        assert_ne!(a, b);
        assert_eq!(derived_name(&["t", "pkey"]), "t_pkey");
    }
}
