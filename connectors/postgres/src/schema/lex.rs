//! Just enough of PostgreSQL's (and psql's) lexer to find what is *outside* literals in
//! pg_restore / pg_dumpall output: statement-ending semicolons, `--` comment lines and psql
//! meta-commands (`\restrict`). Anything inside a string (`'…'`, `E'…'`, `$tag$…$tag$`), a
//! quoted identifier (`"…"`) or a block comment (`/* … */`, nested) is skipped, so names and
//! comment texts that imitate a header or contain `;` cannot confuse the split.

use std::ops::Range;

/// Something found at the top level of a SQL script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A statement-ending `;` at this byte offset.
    Semicolon(usize),
    /// A `--` comment, from `--` up to (not including) the newline.
    LineComment(Range<usize>),
    /// A psql meta-command: from `\` up to (not including) the newline.
    Meta(Range<usize>),
}

/// The top-level marks of `sql`, in order.
pub(crate) fn marks(sql: &str) -> Vec<Mark> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b';' => {
                out.push(Mark::Semicolon(i));
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                let end = line_end(b, i);
                out.push(Mark::LineComment(i..end));
                i = end;
            }
            b'\\' => {
                let end = line_end(b, i);
                out.push(Mark::Meta(i..end));
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = block_comment_end(b, i),
            b'"' => i = quoted_end(b, i + 1, b'"', false),
            b'\'' => {
                let escapes =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident_byte(b[i - 2]));
                i = quoted_end(b, i + 1, b'\'', escapes);
            }
            b'$' if i == 0 || !is_ident_byte(b[i - 1]) => match dollar_tag(b, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    i = find(b, body, tag).map_or(b.len(), |j| j + tag.len());
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    out
}

/// Byte offset of the end of the line starting at or before `i` (the `\n`, or the end).
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p)
}

/// After a `/* … */` comment starting at `i`; comments nest as in PostgreSQL.
fn block_comment_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// After a literal whose body starts at `i` and ends with `quote` (doubled = escaped; with
/// `escapes`, a backslash escapes the next byte too).
fn quoted_end(b: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    while i < b.len() {
        if escapes && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The `$tag$` starting at `i`, if it is a dollar-quote opener (not `$1`).
fn dollar_tag(b: &[u8], i: usize) -> Option<&[u8]> {
    let mut j = i + 1;
    while j < b.len() && b[j] != b'$' {
        let ok = if j == i + 1 {
            b[j].is_ascii_alphabetic() || b[j] == b'_' || b[j] >= 0x80
        } else {
            is_ident_byte(b[j]) && b[j] != b'$'
        };
        if !ok {
            return None;
        }
        j += 1;
    }
    (j < b.len()).then(|| &b[i..=j])
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// `sql` without psql's `\restrict KEY` / `\unrestrict KEY` lines (added by pg_dump 17.6,
/// 16.10, 15.14, … against malicious servers); any other meta-command is an error, so the
/// result is plain SQL that both psql and a driver run the same way.
pub(crate) fn strip_restrict(sql: &str) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for m in marks(sql) {
        if let Mark::Meta(r) = m {
            let cmd = &sql[r.clone()];
            let word = cmd.split_whitespace().next().unwrap_or_default();
            if word != "\\restrict" && word != "\\unrestrict" {
                return Err(format!(
                    "unexpected psql meta-command `{}` in the dump",
                    cmd.chars().take(40).collect::<String>()
                ));
            }
            out.push_str(&sql[last..r.start]);
            last = (r.end + 1).min(sql.len());
        }
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

/// The statements of `sql`, each with its terminating `;` and any comments before it; text
/// after the last `;` that holds more than whitespace and comments is returned as a final,
/// unterminated statement.
pub(crate) fn statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for m in marks(sql) {
        if let Mark::Semicolon(i) = m {
            out.push(&sql[start..=i]);
            start = i + 1;
        }
    }
    if !strip_leading_comments(&sql[start..]).is_empty() {
        out.push(&sql[start..]);
    }
    out
}

/// `stmt` without leading whitespace and comments.
pub(crate) fn strip_leading_comments(mut stmt: &str) -> &str {
    loop {
        stmt = stmt.trim_start();
        if stmt.starts_with("--") {
            stmt = stmt.find('\n').map_or("", |i| &stmt[i + 1..]);
        } else if stmt.starts_with("/*") {
            stmt = &stmt[block_comment_end(stmt.as_bytes(), 0)..];
        } else {
            return stmt;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_hide_their_contents() {
        let sql = "COMMENT ON INDEX a IS 'x;\n-- Name: y\n\\q';\n\
                   SELECT E'it\\'s;', $f$ ; -- $f$, $1, \"a;\"\"b\";\n\
                   /* a /* nested; */ still; */ -- real; comment\n\\restrict k\n";
        let m = marks(sql);
        let semis = m.iter().filter(|m| matches!(m, Mark::Semicolon(_))).count();
        assert_eq!(semis, 2, "{m:?}");
        let comments: Vec<&str> = m
            .iter()
            .filter_map(|m| match m {
                Mark::LineComment(r) => Some(&sql[r.clone()]),
                _ => None,
            })
            .collect();
        assert_eq!(comments, ["-- real; comment"]);
        assert!(m.contains(&Mark::Meta(sql.len() - 12..sql.len() - 1)));
    }

    #[test]
    fn restrict_lines_are_removed_and_other_meta_commands_refused() {
        let sql = "SET a = 1;\n\\restrict abc\nSELECT '\\x';\n\\unrestrict abc\n";
        assert_eq!(strip_restrict(sql).unwrap(), "SET a = 1;\nSELECT '\\x';\n");
        assert!(strip_restrict("SELECT 1;\n\\! rm -rf /\n").is_err());
    }

    #[test]
    fn splits_statements() {
        let s = statements("-- c\nSET a = 1;\nCREATE x AS $$;$$;\n-- done\n");
        assert_eq!(s, ["-- c\nSET a = 1;", "\nCREATE x AS $$;$$;"]);
        assert_eq!(strip_leading_comments(s[0]), "SET a = 1;");
        assert_eq!(statements("a; b"), ["a;", " b"]);
    }
}
