//! Which databases, tables and rows a PostgreSQL → PostgreSQL copy selects: the `--include-*`,
//! `--exclude-*`, `--schema-only-tables`, `--table-filter` and `--time-filter` flags merged over
//! the `[databases.NAME]` sections of a TOML config file. Pure: nothing here touches a database;
//! the caller checks the named tables against the source catalog ([`DbRules::named_tables`]).
//!
//! Table names are written as in SQL — `table` (schema `public`), `schema.table`, and on the
//! command line `db.schema.table` to address one database of several — with double quotes around
//! parts that contain dots, colons, commas, spaces or quotes (`"My Table"`, `"a""b"`,
//! `public."dots.in.name"`). Unlike SQL, **unquoted parts are not lower-cased**: `Orders` names the
//! table `Orders`, exactly as the catalog spells it, because that is what users copy from `\dt`.
//!
//! Precedence: CLI include/exclude lists replace the file's for a database when they name any
//! table there; a CLI filter replaces the file's for the same table; schema-only lists are unioned.
//! A three-part name on the CLI applies to its database only (and wins over a two-part one for
//! the same table), a two-part name to every database. Within one table an exclusion wins over
//! everything.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use pipeline::{Error, Result};
use serde::{Deserialize, Serialize, Serializer};

const FORMS: &str = "write `table`, `schema.table`";
const FORMS_DB: &str = "write `table`, `schema.table` or `database.schema.table`";
const SPAN_FORMS: &str = "write a whole number and a unit: `90 days`, `12 hours`, `6 months` \
    (second, minute, hour, day, week, month, year, singular or plural) or the short forms `30s`, \
    `15min`, `12h`, `90d`, `2w`, `6mo`, `1y`";

/// A table named by the user: `table` (schema `public`), `schema.table`, or with several databases
/// `db.schema.table`. Parts may be double-quoted as in SQL (`"My Table"`, `"a""b"`,
/// `"dots.in.name"`, `public."Ünïcode"`); unquoted parts are taken exactly as written — case is
/// preserved, not folded to lower case as SQL would — and may not contain spaces or quotes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TableRef {
    /// The database, when the name had three parts.
    pub database: Option<String>,
    /// The schema (`public` when not written).
    pub schema: String,
    /// The table.
    pub table: String,
}

impl TableRef {
    /// The table `schema.table` in any database.
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> TableRef {
        TableRef {
            database: None,
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// Parse a table name; `allow_database` permits the three-part `db.schema.table` form.
    pub fn parse(s: &str, allow_database: bool) -> Result<TableRef> {
        parse_table(s, allow_database).map_err(Error::config)
    }

    /// Does this name the table `schema.table` in database `db`? (A ref without a database
    /// matches every database.) Comparison is exact: names are case-sensitive.
    pub fn matches(&self, db: &str, schema: &str, table: &str) -> bool {
        self.database.as_deref().is_none_or(|d| d == db) && self.is(schema, table)
    }

    fn is(&self, schema: &str, table: &str) -> bool {
        self.schema == schema && self.table == table
    }

    fn without_database(&self) -> TableRef {
        TableRef {
            database: None,
            ..self.clone()
        }
    }
}

/// `schema.table` (`db.schema.table` when a database was named), each part double-quoted only
/// when it needs to be; the output parses back to the same ref.
impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = &self.database {
            write!(f, "{}.", quote_if_needed(db))?;
        }
        write!(
            f,
            "{}.{}",
            quote_if_needed(&self.schema),
            quote_if_needed(&self.table)
        )
    }
}

fn parse_table(s: &str, allow_database: bool) -> Result<TableRef, String> {
    let forms = if allow_database { FORMS_DB } else { FORMS };
    let bad = |problem: String| {
        format!(
            "invalid table name `{s}`: {problem}; {forms}, double-quoting parts that contain \
             dots, spaces or quotes (`\"my.table\"`, `\"a\"\"b\"`)"
        )
    };
    if s.trim().is_empty() {
        return Err(bad("the name is empty".into()));
    }
    let raw = split_unquoted(s, '.', usize::MAX).map_err(bad)?;
    let mut parts = Vec::with_capacity(raw.len());
    for (i, part) in raw.iter().enumerate() {
        parts.push(parse_ident(part).map_err(|p| bad(format!("part {} {p}", i + 1)))?);
    }
    let mut parts = parts.into_iter();
    match parts.len() {
        1 => Ok(TableRef::new("public", parts.next().unwrap_or_default())),
        2 => Ok(TableRef::new(
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        )),
        3 if allow_database => Ok(TableRef {
            database: parts.next(),
            schema: parts.next().unwrap_or_default(),
            table: parts.next().unwrap_or_default(),
        }),
        3 => Err(bad("a database cannot be named here (3 parts)".into())),
        n => Err(bad(format!("it has {n} dot-separated parts"))),
    }
}

/// One identifier, quoted or not. The error says what is wrong with it.
fn parse_ident(part: &str) -> Result<String, String> {
    let p = part.trim();
    if p.is_empty() {
        return Err("is empty".into());
    }
    let Some(rest) = p.strip_prefix('"') else {
        if p.contains('"') {
            return Err(format!("`{p}` has a quote inside an unquoted name"));
        }
        if p.contains(char::is_whitespace) {
            return Err(format!(
                "`{p}` contains a space outside quotes (separate names with commas)"
            ));
        }
        return Ok(p.to_string());
    };
    let mut name = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next() {
            None => return Err(format!("`{p}` has an unterminated double quote")),
            Some('"') if chars.as_str().starts_with('"') => {
                chars.next();
                name.push('"');
            }
            Some('"') => break,
            Some(c) => name.push(c),
        }
    }
    let trailing = chars.as_str().trim();
    if !trailing.is_empty() {
        return Err(format!("`{p}` has `{trailing}` after its closing quote"));
    }
    if name.is_empty() {
        return Err("is an empty quoted name `\"\"`".into());
    }
    Ok(name)
}

/// Split `s` at `sep` outside double quotes into at most `max` pieces (the last one is the rest,
/// unscanned).
fn split_unquoted(s: &str, sep: char, max: usize) -> Result<Vec<&str>, String> {
    let (mut pieces, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in s.char_indices() {
        if pieces.len() + 1 >= max {
            break;
        }
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            pieces.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    if quoted {
        return Err(
            "a double quote is not closed (write a quote inside a quoted name as `\"\"`)".into(),
        );
    }
    pieces.push(&s[start..]);
    Ok(pieces)
}

/// Split a comma-separated list of table names at commas outside double quotes, dropping empty
/// items, for flags whose values may hold quoted names with commas (`a,"b,c"` → `a`, `"b,c"`).
/// Quotes are kept; unbalanced quotes are left for [`TableRef::parse`] to report.
pub fn split_list(s: &str) -> Vec<String> {
    let (mut items, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .into_iter()
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .collect()
}

/// PostgreSQL's reserved key words (also those reserved except as function or type names):
/// Display quotes these so that a printed name can be pasted into SQL.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_if_needed(name: &str) -> String {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !RESERVED.contains(&name);
    if plain {
        name.to_string()
    } else {
        quote(name)
    }
}

/// Rows newer than a span on a timestamp column: `--time-filter "schema.table:column:90 days"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeFilter {
    /// The filtered table.
    pub table: TableRef,
    /// The timestamp (or date) column, as written (case preserved, quoted in SQL).
    pub column: String,
    /// The span, normalised to `N unit(s)` (`90 days`, `1 month`).
    pub span: String,
}

impl TimeFilter {
    /// Parse `TABLE:COLUMN:SPAN`; colons inside double-quoted names do not split. SPAN is a
    /// whole number and a unit (`90 days`, `12 hours`) or a short form (`90d`, `12h`, `6mo`, `1y`).
    pub fn parse(s: &str, allow_database: bool) -> Result<TimeFilter> {
        let bad = |p: String| Error::config(format!("invalid time filter `{s}`: {p}"));
        let pieces = split_unquoted(s, ':', usize::MAX).map_err(bad)?;
        let [table, column, span] = pieces[..] else {
            return Err(bad(format!(
                "expected TABLE:COLUMN:SPAN (3 colon-separated parts, got {}), e.g. \
                 `public.events:created_at:90 days`; double-quote names that contain colons",
                pieces.len()
            )));
        };
        TimeFilter::from_parts(table, column, span, allow_database).map_err(bad)
    }

    fn from_parts(table: &str, column: &str, span: &str, allow_db: bool) -> Result<Self, String> {
        Ok(TimeFilter {
            table: parse_table(table, allow_db)?,
            column: parse_ident(column).map_err(|p| format!("the column name {p}"))?,
            span: parse_span(span)?,
        })
    }

    /// The SQL predicate: `"column" >= now() - interval '90 days'`.
    pub fn predicate(&self) -> String {
        format!(
            "{} >= now() - interval '{}'",
            quote(&self.column),
            self.span
        )
    }
}

/// `table:column:span` as the flag takes it; parses back to the same filter.
impl fmt::Display for TimeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.table,
            quote_if_needed(&self.column),
            self.span
        )
    }
}

/// `90 days`, `90d`, `1 Year` → `90 days`, `90 days`, `1 year`.
fn parse_span(s: &str) -> Result<String, String> {
    let t = s.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let unit = match t[digits..].trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => "second",
        "min" | "mins" | "minute" | "minutes" => "minute",
        "h" | "hr" | "hrs" | "hour" | "hours" => "hour",
        "d" | "day" | "days" => "day",
        "w" | "wk" | "wks" | "week" | "weeks" => "week",
        "mo" | "mon" | "mons" | "month" | "months" => "month",
        "y" | "yr" | "yrs" | "year" | "years" => "year",
        "m" => {
            return Err(format!(
                "`{s}` is ambiguous: write `min` or `mo`; {SPAN_FORMS}"
            ))
        }
        _ => return Err(format!("`{s}` is not a time span; {SPAN_FORMS}")),
    };
    match t[..digits].parse::<u32>() {
        Ok(1) => Ok(format!("1 {unit}")),
        Ok(n) if n > 1 => Ok(format!("{n} {unit}s")),
        _ => Err(format!(
            "`{s}` needs a whole number of at least 1; {SPAN_FORMS}"
        )),
    }
}

/// Check that a row predicate is one self-contained SQL expression, so that parenthesising and
/// ANDing it cannot change its meaning: literals, quoted identifiers and dollar quotes closed,
/// parentheses balanced, no `;` and no comments (a `--` would swallow the closing parenthesis).
fn check_predicate(p: &str) -> Result<(), String> {
    if p.trim().is_empty() {
        return Err("the predicate is empty".into());
    }
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    let b = p.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        let next = b.get(i + 1).copied();
        match b[i] {
            q @ (b'\'' | b'"') => {
                let escapes = q == b'\''
                    && i > 0
                    && b[i - 1].eq_ignore_ascii_case(&b'e')
                    && (i < 2 || !ident(b[i - 2]));
                i += 1;
                loop {
                    match b.get(i) {
                        None if q == b'"' => return Err("a quoted identifier is not closed".into()),
                        None => return Err("a string literal is not closed".into()),
                        Some(b'\\') if escapes => i += 2,
                        Some(&c) if c == q && b.get(i + 1) == Some(&q) => i += 2,
                        Some(&c) if c == q => break,
                        Some(_) => i += 1,
                    }
                }
            }
            b'$' if i == 0 || !ident(b[i - 1]) => {
                let tag_len = b[i + 1..].iter().position(|&c| !ident(c) || c == b'$');
                let opens = match tag_len {
                    Some(0) => next == Some(b'$'),
                    Some(n) => b[i + 1 + n] == b'$' && !b[i + 1].is_ascii_digit(),
                    None => false,
                };
                if opens {
                    let tag = &p[i..i + tag_len.unwrap_or(0) + 2];
                    let body = i + tag.len();
                    let Some(end) = p[body..].find(tag) else {
                        return Err(format!(
                            "the dollar-quoted string {tag}…{tag} is not closed"
                        ));
                    };
                    i = body + end + tag.len() - 1;
                }
            }
            b'(' => depth += 1,
            b')' if depth == 0 => return Err("a `)` has no matching `(`".into()),
            b')' => depth -= 1,
            b';' => return Err("`;` is not allowed: a filter is a single expression".into()),
            b'-' if next == Some(b'-') => return Err("comments (`--`) are not allowed".into()),
            b'/' if next == Some(b'*') => return Err("comments (`/*`) are not allowed".into()),
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return Err("a `(` is not closed".into());
    }
    Ok(())
}

/// Everything that selects what one run copies, from the CLI.
#[derive(Debug, Clone, Default)]
pub struct CliRules {
    /// `--include-databases`: copy these databases.
    pub include_databases: Vec<String>,
    /// `--exclude-databases`: never copy these databases.
    pub exclude_databases: Vec<String>,
    /// `--all-databases`: copy every database of the source (except templates).
    pub all_databases: bool,
    /// `--include-tables`: copy only these tables.
    pub include_tables: Vec<String>,
    /// `--exclude-tables`: never copy these tables.
    pub exclude_tables: Vec<String>,
    /// `--schema-only-tables`: copy these tables' definitions but not their rows.
    pub schema_only_tables: Vec<String>,
    /// `TABLE:PREDICATE` (split at the first colon that is outside double quotes).
    pub table_filters: Vec<String>,
    /// `TABLE:COLUMN:SPAN`.
    pub time_filters: Vec<String>,
}

/// A value and the flag or config key it came from (kept for messages, not fingerprinted).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sourced<T> {
    value: T,
    origin: &'static str,
}

impl<T: Serialize> Serialize for Sourced<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

/// Serialise a map as a list of `[key, value]` pairs (JSON keys must be strings).
fn entries<K: Serialize, V: Serialize, S: Serializer>(
    map: &BTreeMap<K, V>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(map.iter())
}

/// The rules for one database. Its table refs carry no database.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DbRules {
    include: Vec<Sourced<TableRef>>,
    exclude: Vec<Sourced<TableRef>>,
    schema_only: Vec<Sourced<TableRef>>,
    #[serde(serialize_with = "entries")]
    table_filters: BTreeMap<TableRef, Sourced<String>>,
    #[serde(serialize_with = "entries")]
    time_filters: BTreeMap<TableRef, Sourced<TimeFilter>>,
}

impl DbRules {
    /// Is the table copied at all (schema and/or data)? Every table when the include list is
    /// empty, else the included and the schema-only ones; an exclusion always wins.
    pub fn selects(&self, schema: &str, table: &str) -> bool {
        let named = |list: &[Sourced<TableRef>]| list.iter().any(|r| r.value.is(schema, table));
        !named(&self.exclude)
            && (self.include.is_empty() || named(&self.include) || named(&self.schema_only))
    }

    /// Is only its schema copied (no rows)?
    pub fn schema_only(&self, schema: &str, table: &str) -> bool {
        self.selects(schema, table) && self.schema_only.iter().any(|r| r.value.is(schema, table))
    }

    /// The row predicate for a selected table that is not schema-only: its table filter and its
    /// time filter, each parenthesised and ANDed (`(a) AND (b)`, or `(a)` alone), or None.
    pub fn predicate(&self, schema: &str, table: &str) -> Option<String> {
        if !self.selects(schema, table) || self.schema_only(schema, table) {
            return None;
        }
        let key = TableRef::new(schema, table);
        let parts: Vec<String> = [
            self.table_filters.get(&key).map(|f| f.value.clone()),
            self.time_filters.get(&key).map(|f| f.value.predicate()),
        ]
        .into_iter()
        .flatten()
        .map(|p| format!("({p})"))
        .collect();
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }

    /// Every table the rules name, with the flag (`--include-tables`) or config key
    /// (`include_tables`) that named it, so the caller can report names that match no source
    /// table.
    pub fn named_tables(&self) -> Vec<(&'static str, TableRef)> {
        let lists = [&self.include, &self.exclude, &self.schema_only];
        let listed = lists
            .into_iter()
            .flatten()
            .map(|r| (r.origin, r.value.clone()));
        let filtered = self
            .table_filters
            .iter()
            .map(|(t, f)| (f.origin, t.clone()));
        let timed = self.time_filters.iter().map(|(t, f)| (f.origin, t.clone()));
        listed.chain(filtered).chain(timed).collect()
    }

    /// True when a table or time filter applies to a selected table whose rows are copied
    /// (filtered copies need the foreign-key guard).
    pub fn has_row_filters(&self) -> bool {
        let mut keys = self.table_filters.keys().chain(self.time_filters.keys());
        keys.any(|t| self.predicate(&t.schema, &t.table).is_some())
    }

    fn normalise(&mut self) {
        for list in [&mut self.include, &mut self.exclude, &mut self.schema_only] {
            list.sort_by(|a, b| a.value.cmp(&b.value));
            list.dedup_by(|a, b| a.value == b.value);
        }
    }
}

/// Rules for a whole run: the database selection, the config file's per-database rules and the
/// CLI's table rules (whose refs may name a database).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rules {
    include_databases: Vec<String>,
    exclude_databases: Vec<String>,
    all_databases: bool,
    #[serde(skip)]
    config_path: Option<PathBuf>,
    config: BTreeMap<String, DbRules>,
    cli: DbRules,
}

impl Rules {
    /// Merge CLI rules over the config file (`--config FILE`, optional). See the module docs
    /// for precedence.
    pub fn new(cli: &CliRules, config: Option<&Path>) -> Result<Rules> {
        if cli.all_databases && !cli.include_databases.is_empty() {
            return Err(Error::config(
                "--all-databases and --include-databases contradict each other: give one of them",
            ));
        }
        let names = |list: &[String], flag: &str| -> Result<Vec<String>> {
            let mut out: Vec<String> = Vec::new();
            for name in list.iter().map(|n| n.trim()) {
                if name.is_empty() {
                    return Err(Error::config(format!("{flag}: a database name is empty")));
                }
                if !out.iter().any(|o| o == name) {
                    out.push(name.to_string());
                }
            }
            Ok(out)
        };
        Ok(Rules {
            include_databases: names(&cli.include_databases, "--include-databases")?,
            exclude_databases: names(&cli.exclude_databases, "--exclude-databases")?,
            all_databases: cli.all_databases,
            config_path: config.map(Path::to_path_buf),
            config: config.map(load_config).transpose()?.unwrap_or_default(),
            cli: cli_layer(cli)?,
        })
    }

    /// Which source databases to copy, given the source's databases (`available`, templates
    /// already left out) and the database named in the source URL (`url_db`). By default the URL's
    /// database alone; `--include-databases` (each must exist) or `--all-databases` instead;
    /// `--exclude-databases` (each must exist) then removes. `postgres` is an ordinary database.
    /// Config sections do not add databases, they only hold rules (a section for a database that
    /// is not copied is ignored, but one for a database the source lacks is an error). A CLI
    /// table name qualified with a database that is not copied is an error.
    pub fn databases(&self, url_db: &str, available: &[String]) -> Result<Vec<String>> {
        let missing = |flag: &str, db: &str| {
            Error::config(format!(
                "{flag} names `{db}`, which is not a database on the source; it has: {}",
                if available.is_empty() {
                    "(none listed)".into()
                } else {
                    available.join(", ")
                }
            ))
        };
        let mut chosen = if self.all_databases {
            available.to_vec()
        } else if self.include_databases.is_empty() {
            vec![url_db.to_string()]
        } else {
            for db in &self.include_databases {
                if !available.contains(db) {
                    return Err(missing("--include-databases", db));
                }
            }
            self.include_databases.clone()
        };
        for db in &self.exclude_databases {
            if !available.contains(db) {
                return Err(missing("--exclude-databases", db));
            }
        }
        chosen.retain(|db| !self.exclude_databases.contains(db));
        if chosen.is_empty() {
            return Err(Error::config(
                "no database is left to copy after --exclude-databases; exclude fewer",
            ));
        }
        for (origin, table) in self.cli.named_tables() {
            match &table.database {
                Some(db) if !chosen.contains(db) => {
                    return Err(Error::config(format!(
                        "{origin} names `{table}` in database `{db}`, which is not copied (copied: \
                         {}); add it with --include-databases or drop the database part",
                        chosen.join(", ")
                    )));
                }
                _ => {}
            }
        }
        let path = self
            .config_path
            .as_deref()
            .unwrap_or(Path::new("the config file"));
        for db in self.config.keys() {
            if !available.contains(db) && db != url_db {
                return Err(Error::config(format!(
                    "{}: [databases.{db}] names a database the source does not have; it has: {}",
                    path.display(),
                    available.join(", ")
                )));
            }
        }
        Ok(chosen)
    }

    /// Rules for database `db`.
    pub fn for_database(&self, db: &str) -> DbRules {
        self.merged(Some(db))
    }

    /// `db` None: the rules of a database named nowhere (only two-part CLI names apply).
    fn merged(&self, db: Option<&str>) -> DbRules {
        let mut out = db
            .and_then(|d| self.config.get(d))
            .cloned()
            .unwrap_or_default();
        let applies = |r: &TableRef| r.database.is_none() || r.database.as_deref() == db;
        let pick = |list: &[Sourced<TableRef>]| -> Vec<Sourced<TableRef>> {
            let mine = list.iter().filter(|r| applies(&r.value));
            mine.map(|r| Sourced {
                value: r.value.without_database(),
                origin: r.origin,
            })
            .collect()
        };
        let include = pick(&self.cli.include);
        if !include.is_empty() {
            out.include = include;
        }
        let exclude = pick(&self.cli.exclude);
        if !exclude.is_empty() {
            out.exclude = exclude;
        }
        out.schema_only.extend(pick(&self.cli.schema_only));
        // Two-part names first, so that a three-part one for this database wins.
        for qualified in [false, true] {
            for (t, f) in &self.cli.table_filters {
                if t.database.is_some() == qualified && applies(t) {
                    out.table_filters.insert(t.without_database(), f.clone());
                }
            }
            for (t, f) in &self.cli.time_filters {
                if t.database.is_some() == qualified && applies(t) {
                    let mut f = f.clone();
                    f.value.table = t.without_database();
                    out.time_filters.insert(t.without_database(), f);
                }
            }
        }
        out.normalise();
        out
    }

    /// A stable text form of everything that decides the copy's content, for a resume
    /// fingerprint: JSON with sorted keys of the database selection and the merged rules of every
    /// database the rules name plus those of any other database. Where a rule came from (flag or
    /// file) does not count.
    pub fn fingerprint(&self) -> String {
        let mut names: Vec<String> = self.config.keys().cloned().collect();
        names.extend(
            self.cli
                .named_tables()
                .into_iter()
                .filter_map(|(_, t)| t.database),
        );
        names.sort();
        names.dedup();
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        let merged: BTreeMap<&String, DbRules> =
            names.iter().map(|d| (d, self.merged(Some(d)))).collect();
        let value = serde_json::json!({
            "all_databases": self.all_databases,
            "include_databases": sorted(&self.include_databases),
            "exclude_databases": sorted(&self.exclude_databases),
            "databases": merged,
            "other_databases": self.merged(None),
        });
        sort_keys(value).to_string()
    }
}

/// Rebuild every JSON object with its keys inserted in order (serde_json may preserve insertion
/// order when another crate enables `preserve_order`).
fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut pairs: Vec<_> = map.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(pairs.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        serde_json::Value::Array(items) => items.into_iter().map(sort_keys).collect(),
        other => other,
    }
}

/// The CLI's table rules as one layer whose refs may name a database.
fn cli_layer(cli: &CliRules) -> Result<DbRules> {
    let mut out = DbRules::default();
    let lists = [
        (&cli.include_tables, "--include-tables", &mut out.include),
        (&cli.exclude_tables, "--exclude-tables", &mut out.exclude),
        (
            &cli.schema_only_tables,
            "--schema-only-tables",
            &mut out.schema_only,
        ),
    ];
    for (names, flag, list) in lists {
        for name in names {
            let value = TableRef::parse(name, true).map_err(|e| e.context(flag))?;
            list.push(Sourced {
                value,
                origin: flag,
            });
        }
    }
    let twice = |flag: &str, t: &TableRef| {
        Error::config(format!(
            "{flag} is given twice for `{t}`: give one filter per table (combine predicates \
             with AND)"
        ))
    };
    for spec in &cli.table_filters {
        let bad = |p: String| {
            Error::config(format!(
                "--table-filter `{spec}`: {p}; write TABLE:PREDICATE, e.g. \
                 `orders:created_at > '2024-01-01'`"
            ))
        };
        let pieces = split_unquoted(spec, ':', 2).map_err(bad)?;
        let [table, predicate] = pieces[..] else {
            return Err(bad(
                "there is no `:` between the table and the predicate".into()
            ));
        };
        let table = parse_table(table, true).map_err(bad)?;
        let predicate = predicate.trim();
        check_predicate(predicate).map_err(bad)?;
        let value = Sourced {
            value: predicate.to_string(),
            origin: "--table-filter",
        };
        if out.table_filters.insert(table.clone(), value).is_some() {
            return Err(twice("--table-filter", &table));
        }
    }
    for spec in &cli.time_filters {
        let filter = TimeFilter::parse(spec, true).map_err(|e| e.context("--time-filter"))?;
        let table = filter.table.clone();
        let value = Sourced {
            value: filter,
            origin: "--time-filter",
        };
        if out.time_filters.insert(table.clone(), value).is_some() {
            return Err(twice("--time-filter", &table));
        }
    }
    out.normalise();
    Ok(out)
}

/// The config file: `[databases.NAME]` sections.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    databases: BTreeMap<String, DatabaseSection>,
}

/// One `[databases.NAME]` section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseSection {
    #[serde(default)]
    include_tables: Vec<toml::Spanned<String>>,
    #[serde(default)]
    exclude_tables: Vec<toml::Spanned<String>>,
    #[serde(default)]
    schema_only: Vec<toml::Spanned<String>>,
    #[serde(default)]
    table_filters: Vec<TableFilterEntry>,
    #[serde(default)]
    time_filters: Vec<TimeFilterEntry>,
}

/// `[[databases.NAME.table_filters]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFilterEntry {
    table: toml::Spanned<String>,
    #[serde(rename = "where")]
    predicate: toml::Spanned<String>,
}

/// `[[databases.NAME.time_filters]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeFilterEntry {
    table: toml::Spanned<String>,
    column: toml::Spanned<String>,
    last: toml::Spanned<String>,
}

fn load_config(path: &Path) -> Result<BTreeMap<String, DbRules>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(format!(
            "cannot read the config file {}: {e}; check --config",
            path.display()
        ))
        .with_cause(e)
    })?;
    let file: ConfigFile = toml::from_str(&text)
        .map_err(|e| Error::config(format!("invalid config file {}: {e}", path.display())))?;
    // `path:line:column: [databases.db] key: problem`
    let at = |span: Range<usize>, db: &str, key: &str, problem: String| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Error::config(format!(
            "{}:{line}:{column}: [databases.{db}] {key}: {problem}",
            path.display()
        ))
    };
    let mut out = BTreeMap::new();
    for (db, section) in file.databases {
        if db.trim().is_empty() {
            return Err(Error::config(format!(
                "{}: a [databases.\"\"] section has an empty database name",
                path.display()
            )));
        }
        let mut rules = DbRules::default();
        let lists = [
            (section.include_tables, "include_tables", &mut rules.include),
            (section.exclude_tables, "exclude_tables", &mut rules.exclude),
            (section.schema_only, "schema_only", &mut rules.schema_only),
        ];
        for (names, key, list) in lists {
            for name in names {
                let value =
                    parse_table(name.get_ref(), false).map_err(|p| at(name.span(), &db, key, p))?;
                list.push(Sourced { value, origin: key });
            }
        }
        let twice = |t: &TableRef| {
            format!("a second filter for `{t}`: give one per table (combine predicates with AND)")
        };
        for entry in section.table_filters {
            let key = "table_filters";
            let table = parse_table(entry.table.get_ref(), false)
                .map_err(|p| at(entry.table.span(), &db, key, p))?;
            let predicate = entry.predicate.get_ref().trim().to_string();
            check_predicate(&predicate)
                .map_err(|p| at(entry.predicate.span(), &db, key, format!("`where`: {p}")))?;
            let value = Sourced {
                value: predicate,
                origin: key,
            };
            if rules.table_filters.insert(table.clone(), value).is_some() {
                return Err(at(entry.table.span(), &db, key, twice(&table)));
            }
        }
        for entry in section.time_filters {
            let key = "time_filters";
            let table = parse_table(entry.table.get_ref(), false)
                .map_err(|p| at(entry.table.span(), &db, key, p))?;
            let column = parse_ident(entry.column.get_ref())
                .map_err(|p| at(entry.column.span(), &db, key, format!("`column` {p}")))?;
            let span = parse_span(entry.last.get_ref())
                .map_err(|p| at(entry.last.span(), &db, key, format!("`last`: {p}")))?;
            let value = Sourced {
                value: TimeFilter {
                    table: table.clone(),
                    column,
                    span,
                },
                origin: key,
            };
            if rules.time_filters.insert(table.clone(), value).is_some() {
                return Err(at(entry.table.span(), &db, key, twice(&table)));
            }
        }
        rules.normalise();
        out.insert(db, rules);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn t(s: &str) -> TableRef {
        TableRef::parse(s, true).unwrap()
    }

    fn err(r: Result<impl fmt::Debug>) -> String {
        r.unwrap_err().message().to_string()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn config(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn table_names_parse_like_sql_but_keep_case() {
        assert_eq!(t("orders"), TableRef::new("public", "orders"));
        assert_eq!(t("Sales.Orders"), TableRef::new("Sales", "Orders"));
        assert_eq!(t(" s . t "), TableRef::new("s", "t"));
        assert_eq!(t("\"My Table\""), TableRef::new("public", "My Table"));
        assert_eq!(t("\"a\"\"b\""), TableRef::new("public", "a\"b"));
        assert_eq!(
            t("\"dots.in.name\""),
            TableRef::new("public", "dots.in.name")
        );
        assert_eq!(t("public.\"Ünïcode\""), TableRef::new("public", "Ünïcode"));
        assert_eq!(t("ünï.cödé"), TableRef::new("ünï", "cödé"));
        assert_eq!(t("\"select\".\"from\""), TableRef::new("select", "from"));
        assert_eq!(t("select"), TableRef::new("public", "select"));
        assert_eq!(t("\"a:b\".\"c,d\""), TableRef::new("a:b", "c,d"));
        let three = t("app.\"x.y\".z");
        assert_eq!(three.database.as_deref(), Some("app"));
        assert_eq!((three.schema.as_str(), three.table.as_str()), ("x.y", "z"));
        assert!(three.matches("app", "x.y", "z") && !three.matches("other", "x.y", "z"));
        assert!(t("orders").matches("any", "public", "orders"));
        assert!(!t("Orders").matches("any", "public", "orders"));
    }

    #[test]
    fn bad_table_names_say_what_is_wrong() {
        let bad = |s: &str, allow: bool| err(TableRef::parse(s, allow));
        assert!(bad("", true).contains("empty"));
        assert!(bad(".orders", true).contains("part 1 is empty"));
        assert!(bad("public.", true).contains("part 2 is empty"));
        assert!(bad("a..b", true).contains("part 2 is empty"));
        assert!(bad("\"\"", true).contains("empty quoted name"));
        assert!(bad("\"open", true).contains("not closed"));
        assert!(bad("public.\"a\"\"", true).contains("not closed"));
        assert!(bad("\"a\"b", true).contains("after its closing quote"));
        assert!(bad("a\"b\"", true).contains("quote inside an unquoted name"));
        assert!(bad("my table", true).contains("space outside quotes"));
        assert!(bad("a.b.c.d", true).contains("4 dot-separated parts"));
        let no_db = bad("a.b.c", false);
        assert!(no_db.contains("cannot be named here") && !no_db.contains("database.schema"));
        assert!(bad("a.b.c.d", true).contains("`database.schema.table`"));
    }

    #[test]
    fn display_quotes_only_when_needed_and_round_trips() {
        assert_eq!(t("orders").to_string(), "public.orders");
        assert_eq!(t("Orders").to_string(), "public.\"Orders\"");
        assert_eq!(t("select").to_string(), "public.\"select\"");
        assert_eq!(t("\"a\"\"b.c\"").to_string(), "public.\"a\"\"b.c\"");
        assert_eq!(t("db.s_1.t$2").to_string(), "db.s_1.t$2");
        assert_eq!(t("\"1abc\"").to_string(), "public.\"1abc\"");
        for name in [
            "My Table", "a\"b", " padded ", "x.y:z,w", "Ünï", "select", "_ok$",
        ] {
            let r = TableRef {
                database: Some(name.into()),
                ..TableRef::new(name, name)
            };
            assert_eq!(t(&r.to_string()), r, "{r}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn any_name_round_trips(schema in "\\PC{1,12}", table in "[a-zA-Z\"._ :]{1,12}") {
            let r = TableRef::new(schema, table);
            proptest::prop_assert_eq!(TableRef::parse(&r.to_string(), false).unwrap(), r);
        }
    }

    #[test]
    fn split_list_respects_quotes() {
        assert_eq!(
            split_list("a, \"b,c\" ,,d"),
            strings(&["a", "\"b,c\"", "d"])
        );
        assert!(split_list(" , ").is_empty());
    }

    #[test]
    fn time_filters_parse_and_normalise() {
        let f = TimeFilter::parse("public.events:created_at:90 days", false).unwrap();
        assert_eq!(f.table, TableRef::new("public", "events"));
        assert_eq!(
            f.predicate(),
            "\"created_at\" >= now() - interval '90 days'"
        );
        let f = TimeFilter::parse("\"a:b\".\"c:d\":\"At\"\"x\":1y", true).unwrap();
        assert_eq!(f.table, TableRef::new("a:b", "c:d"));
        assert_eq!(f.predicate(), "\"At\"\"x\" >= now() - interval '1 year'");
        for (given, span) in [
            ("90d", "90 days"),
            ("1 DAY", "1 day"),
            ("12h", "12 hours"),
            ("30 s", "30 seconds"),
            ("15min", "15 minutes"),
            ("2w", "2 weeks"),
            ("6mo", "6 months"),
            ("1 month", "1 month"),
            (" 3 years ", "3 years"),
        ] {
            assert_eq!(parse_span(given).unwrap(), span, "{given}");
        }
        for bad in [
            "",
            "days",
            "0 days",
            "-1 days",
            "1.5 days",
            "5 fortnights",
            "99999999999d",
        ] {
            assert!(parse_span(bad).unwrap_err().contains("`90 days`"), "{bad}");
        }
        assert!(parse_span("5m").unwrap_err().contains("ambiguous"));
        let e = err(TimeFilter::parse("events:90 days", false));
        assert!(
            e.contains("TABLE:COLUMN:SPAN") && e.contains("got 2"),
            "{e}"
        );
        assert!(err(TimeFilter::parse("\"ev:created:1d", false)).contains("not closed"));
        assert!(err(TimeFilter::parse("events::1d", false)).contains("column name is empty"));
        assert!(err(TimeFilter::parse("db.s.t:c:1d", false)).contains("cannot be named here"));
    }

    #[test]
    fn predicates_must_be_one_expression() {
        for ok in [
            "a > 1",
            "name = 'it''s; -- not a comment' AND (b OR c)",
            "\"we;ird\" = E'a\\'b)'",
            "body = $$ ; ) $$ and x = $t$;$t$ and y = $1",
            "created_at > NOW() - INTERVAL '90 days'",
            "a$b = 1",
        ] {
            assert_eq!(check_predicate(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("a = 1; drop table t", "`;`"),
            ("a = 1 -- recent", "comments"),
            ("a /* x */ = 1", "comments"),
            ("x) OR (y", "no matching"),
            ("(a = 1", "not closed"),
            ("a = 'open", "string literal"),
            ("\"open = 1", "quoted identifier"),
            ("a = $x$ open", "dollar-quoted"),
        ] {
            assert!(check_predicate(bad).unwrap_err().contains(why), "{bad}");
        }
    }

    #[test]
    fn selection_schema_only_and_predicates() {
        let cli = CliRules {
            include_tables: strings(&["orders", "users"]),
            exclude_tables: strings(&["users"]),
            schema_only_tables: strings(&["archive"]),
            table_filters: strings(&["orders:id > 10", "\"Odd:Name\":x = 'a:b'"]),
            time_filters: strings(&["orders:created_at:90d", "archive:at:1d"]),
            ..CliRules::default()
        };
        let db = Rules::new(&cli, None).unwrap().for_database("app");
        assert!(db.selects("public", "orders") && !db.selects("public", "users"));
        assert!(db.selects("public", "archive") && db.schema_only("public", "archive"));
        assert!(!db.selects("public", "other") && !db.selects("other", "orders"));
        assert_eq!(
            db.predicate("public", "orders").unwrap(),
            "(id > 10) AND (\"created_at\" >= now() - interval '90 days')"
        );
        assert_eq!(db.predicate("public", "archive"), None);
        assert_eq!(db.predicate("public", "Odd:Name"), None, "not included");
        assert!(db.has_row_filters());
        let named = db.named_tables();
        assert!(named.contains(&("--exclude-tables", TableRef::new("public", "users"))));
        assert!(named.contains(&("--table-filter", TableRef::new("public", "Odd:Name"))));
        assert!(named.contains(&("--time-filter", TableRef::new("public", "archive"))));
        assert_eq!(named.len(), 8);

        let all = Rules::new(&CliRules::default(), None)
            .unwrap()
            .for_database("app");
        assert!(all.selects("any", "thing") && !all.schema_only("any", "thing"));
        assert!(all.predicate("any", "thing").is_none() && !all.has_row_filters());
    }

    #[test]
    fn bad_cli_rules_name_the_flag() {
        let bad = |cli: CliRules| err(Rules::new(&cli, None));
        let e = bad(CliRules {
            include_tables: strings(&["a..b"]),
            ..Default::default()
        });
        assert!(
            e.starts_with("--include-tables: invalid table name `a..b`"),
            "{e}"
        );
        let e = bad(CliRules {
            table_filters: strings(&["orders"]),
            ..Default::default()
        });
        assert!(
            e.contains("--table-filter `orders`") && e.contains("no `:`"),
            "{e}"
        );
        let e = bad(CliRules {
            table_filters: strings(&["o: a -- x"]),
            ..Default::default()
        });
        assert!(e.contains("comments"), "{e}");
        let twice = strings(&["o:a > 1", "public.o:b > 1"]);
        let e = bad(CliRules {
            table_filters: twice,
            ..Default::default()
        });
        assert!(e.contains("given twice for `public.o`"), "{e}");
        let e = bad(CliRules {
            time_filters: strings(&["o:c:soon"]),
            ..Default::default()
        });
        assert!(e.starts_with("--time-filter: invalid time filter"), "{e}");
        let e = bad(CliRules {
            all_databases: true,
            include_databases: strings(&["a"]),
            ..Default::default()
        });
        assert!(e.contains("contradict"), "{e}");
        let e = bad(CliRules {
            exclude_databases: strings(&[" "]),
            ..Default::default()
        });
        assert!(
            e.contains("--exclude-databases: a database name is empty"),
            "{e}"
        );
    }

    const CONFIG: &str = r#"
[databases.app]
include_tables = ["public.orders", "users", "events"]
exclude_tables = ["audit_log"]
schema_only = ["big_archive"]

[[databases.app.table_filters]]
table = "orders"
where = "created_at > NOW() - INTERVAL '90 days'"

[[databases.app.table_filters]]
table = "users"
where = "id IN (SELECT user_id FROM orders)"

[[databases.app.time_filters]]
table = "events"
column = "created_at"
last = "90 days"

[databases.other]
"#;

    #[test]
    fn config_file_rules_and_cli_precedence() {
        let file = config(CONFIG);
        let rules = Rules::new(&CliRules::default(), Some(file.path())).unwrap();
        let app = rules.for_database("app");
        assert!(app.selects("public", "users") && !app.selects("public", "audit_log"));
        assert!(app.schema_only("public", "big_archive") && !app.selects("public", "misc"));
        assert_eq!(
            app.predicate("public", "orders").unwrap(),
            "(created_at > NOW() - INTERVAL '90 days')"
        );
        assert!(app
            .named_tables()
            .contains(&("include_tables", TableRef::new("public", "users"))));
        assert!(rules.for_database("other").selects("public", "misc"));

        // The CLI replaces include lists, overrides filters per table, unions schema_only; a
        // three-part name touches its database only and beats a two-part one.
        let cli = CliRules {
            include_tables: strings(&["app.public.orders", "app.public.events", "misc"]),
            schema_only_tables: strings(&["logs"]),
            table_filters: strings(&["orders:id > 5", "app.public.orders:id > 7"]),
            time_filters: strings(&["app.public.events:ts:1w"]),
            ..Default::default()
        };
        let rules = Rules::new(&cli, Some(file.path())).unwrap();
        let app = rules.for_database("app");
        assert!(app.selects("public", "orders") && app.selects("public", "misc"));
        assert!(
            !app.selects("public", "users"),
            "CLI include list replaced the file's"
        );
        assert!(app.schema_only("public", "big_archive") && app.schema_only("public", "logs"));
        assert_eq!(app.predicate("public", "orders").unwrap(), "(id > 7)");
        assert_eq!(
            app.predicate("public", "events").unwrap(),
            "(\"ts\" >= now() - interval '1 week')"
        );
        assert!(
            !app.selects("public", "audit_log"),
            "the file's exclusions still apply"
        );
        let other = rules.for_database("other");
        assert!(other.selects("public", "misc") && !other.selects("public", "orders"));
        assert_eq!(other.predicate("public", "misc"), None);
        assert_eq!(rules.for_database("third").named_tables().len(), 3);
    }

    #[test]
    fn config_file_errors_name_file_line_and_key() {
        let bad = |text: &str| {
            let file = config(text);
            let e = err(Rules::new(&CliRules::default(), Some(file.path())));
            let name = file.path().display().to_string();
            assert!(e.contains(&name), "{e}");
            e.replace(&name, "FILE")
        };
        let e = bad("[databases.app]\ninclude_table = [\"a\"]\n");
        assert!(
            e.contains("line 2") && e.contains("unknown field `include_table`"),
            "{e}"
        );
        let e = bad("[database.app]\n");
        assert!(e.contains("unknown field `database`"), "{e}");
        let e = bad("[[databases.app.table_filters]]\ntable = \"o\"\nwhere = \"a\"\nlimit = 3\n");
        assert!(e.contains("unknown field `limit`"), "{e}");
        let e = bad("[databases.app]\nschema_only = [\"x\"\n");
        assert!(e.contains("TOML parse error at line"), "{e}");
        let e = bad("[databases.app]\nexclude_tables = [\"ok\",\n  \"a.b.c\"]\n");
        assert!(
            e.starts_with("FILE:3:3: [databases.app] exclude_tables: invalid table"),
            "{e}"
        );
        let e = bad("[[databases.app.table_filters]]\ntable = \"o\"\nwhere = \"x; y\"\n");
        assert!(
            e.starts_with("FILE:3:9: [databases.app] table_filters: `where`: `;`"),
            "{e}"
        );
        let e = bad("[[databases.a.time_filters]]\ntable = \"e\"\ncolumn = \"c\"\nlast = \"2m\"\n");
        assert!(
            e.starts_with("FILE:4:8: [databases.a] time_filters: `last`:"),
            "{e}"
        );
        let twice = "[[databases.a.table_filters]]\ntable = \"o\"\nwhere = \"x\"\n";
        let e = bad(&format!("{twice}{twice}"));
        assert!(
            e.starts_with("FILE:5:9:") && e.contains("second filter for `public.o`"),
            "{e}"
        );
        let e = bad("[databases.\"\"]\n");
        assert!(e.contains("empty database name"), "{e}");
        let missing = Path::new("/nonexistent/seren.toml");
        let e = err(Rules::new(&CliRules::default(), Some(missing)));
        assert!(
            e.contains("cannot read the config file /nonexistent/seren.toml"),
            "{e}"
        );
    }

    #[test]
    fn database_selection() {
        let have = strings(&["app", "postgres", "shop"]);
        let pick = |cli: CliRules| Rules::new(&cli, None).unwrap().databases("app", &have);
        assert_eq!(pick(CliRules::default()).unwrap(), ["app"]);
        let inc = strings(&["shop", "postgres", "shop"]);
        let cli = CliRules {
            include_databases: inc,
            ..Default::default()
        };
        assert_eq!(pick(cli).unwrap(), ["shop", "postgres"]);
        let cli = CliRules {
            all_databases: true,
            exclude_databases: strings(&["shop"]),
            ..Default::default()
        };
        assert_eq!(pick(cli).unwrap(), ["app", "postgres"]);
        let cli = CliRules {
            include_databases: strings(&["nope"]),
            ..Default::default()
        };
        let e = err(pick(cli));
        assert!(
            e.contains("--include-databases names `nope`") && e.contains("app, postgres, shop")
        );
        let cli = CliRules {
            exclude_databases: strings(&["typo"]),
            ..Default::default()
        };
        assert!(err(pick(cli)).contains("--exclude-databases names `typo`"));
        let cli = CliRules {
            exclude_databases: strings(&["app"]),
            ..Default::default()
        };
        assert!(err(pick(cli)).contains("no database is left"));
        let cli = CliRules {
            include_tables: strings(&["shop.public.t"]),
            ..Default::default()
        };
        let e = err(pick(cli));
        assert!(
            e.contains("`shop.public.t` in database `shop`, which is not copied"),
            "{e}"
        );

        let file = config("[databases.shop]\n[databases.gone]\n");
        let rules = Rules::new(&CliRules::default(), Some(file.path())).unwrap();
        let e = err(rules.databases("app", &have));
        assert!(
            e.contains("[databases.gone] names a database the source does not have"),
            "{e}"
        );
        let file = config("[databases.shop]\n");
        let rules = Rules::new(&CliRules::default(), Some(file.path())).unwrap();
        assert_eq!(
            rules.databases("app", &have).unwrap(),
            ["app"],
            "sections add no database"
        );
    }

    #[test]
    fn fingerprint_is_stable_and_sensitive() {
        let file = config(CONFIG);
        let cli = CliRules {
            include_tables: strings(&["b", "a"]),
            time_filters: strings(&["a:at:90 days"]),
            ..Default::default()
        };
        let one = Rules::new(&cli, Some(file.path())).unwrap().fingerprint();
        let reordered = CliRules {
            include_tables: strings(&["public.a", "b", "a"]),
            time_filters: strings(&["public.a:\"at\":90d"]),
            ..Default::default()
        };
        assert_eq!(
            Rules::new(&reordered, Some(file.path()))
                .unwrap()
                .fingerprint(),
            one
        );
        let changed = CliRules {
            time_filters: strings(&["a:at:91d"]),
            ..cli.clone()
        };
        assert_ne!(
            Rules::new(&changed, Some(file.path()))
                .unwrap()
                .fingerprint(),
            one
        );
        assert_ne!(Rules::new(&cli, None).unwrap().fingerprint(), one);
        let value: serde_json::Value = serde_json::from_str(&one).unwrap();
        assert!(value["databases"]["app"]["include"].is_array(), "{one}");
    }
}
