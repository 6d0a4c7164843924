//! The statements that compare a table, as SQL text identical on both sides: key bounds travel
//! as quoted literals cast to the key column's type, so the same statement runs on both servers
//! whatever their type OIDs.

use crate::ddl::{quote_ident, quote_literal};

/// A primary-key column as the statements use it.
#[derive(Debug, Clone)]
pub(super) struct KeyColumn {
    /// Column name (for reports).
    pub(super) name: String,
    /// The column in comparisons and ORDER BY: qualified with the table's name (a bare name in
    /// ORDER BY would mean the output column of the same name, the key's text), with
    /// `COLLATE "C"` when the two sides sort its values differently.
    pub(super) expr: String,
    /// The column's type (`format_type`), for casting literal bounds.
    pub(super) cast: String,
}

/// Primary-key values from `lo` (inclusive) to `hi` (exclusive), each bound the key's text
/// per column; `None` is unbounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Range {
    pub(super) lo: Option<Vec<String>>,
    pub(super) hi: Option<Vec<String>>,
}

/// The statements for one table, identical on both sides.
#[derive(Debug, Clone)]
pub(super) struct TableSql {
    /// `ONLY "schema"."table"`: a parent's rows without its children's, as `init` copies them.
    pub(super) from: String,
    /// `ROW("a", "b")::text`: the source's copied columns by name, so a different column order
    /// on the target (a partition attached with its own layout) does not count as a change.
    /// Generated columns are left out: the target computes them from the others.
    pub(super) row_text: String,
    pub(super) filter: Option<String>,
    pub(super) key: Vec<KeyColumn>,
}

impl TableSql {
    pub(super) fn condition(&self, range: &Range) -> String {
        let mut parts = Vec::new();
        if let Some(lo) = &range.lo {
            parts.push(self.bound(lo, ">="));
        }
        if let Some(hi) = &range.hi {
            parts.push(self.bound(hi, "<"));
        }
        if let Some(f) = &self.filter {
            parts.push(format!("({f})"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", parts.join(" AND "))
        }
    }

    /// `key >= 'v'::type`, or a row comparison `(a, b) >= ('1'::integer, 'x'::text)`, which
    /// orders lexicographically and uses the primary key's index.
    pub(super) fn bound(&self, values: &[String], op: &str) -> String {
        let exprs: Vec<&str> = self.key.iter().map(|k| k.expr.as_str()).collect();
        let literals: Vec<String> = self
            .key
            .iter()
            .zip(values)
            .map(|(k, v)| format!("{}::{}", quote_literal(v), k.cast))
            .collect();
        if exprs.len() == 1 {
            format!("{} {op} {}", exprs[0], literals[0])
        } else {
            format!("({}) {op} ({})", exprs.join(", "), literals.join(", "))
        }
    }

    pub(super) fn order_by(&self) -> String {
        let exprs: Vec<&str> = self.key.iter().map(|k| k.expr.as_str()).collect();
        exprs.join(", ")
    }

    pub(super) fn key_text(&self) -> String {
        let cols: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("{}::text", quote_ident(&k.name)))
            .collect();
        cols.join(", ")
    }

    pub(super) fn digest_sql(&self, range: &Range) -> String {
        format!(
            "SELECT count(*)::text, coalesce(sum(('x' || substr(md5({}), 1, 15))::bit(60)::bigint), \
             0)::text FROM {}{}",
            self.row_text,
            self.from,
            self.condition(range)
        )
    }

    pub(super) fn sample_sql(&self, percent: f64) -> String {
        format!(
            "SELECT {} FROM {} TABLESAMPLE SYSTEM ({percent:.6}) ORDER BY {}",
            self.key_text(),
            self.from,
            self.order_by()
        )
    }

    pub(super) fn key_at_sql(&self, range: &Range, offset: u64) -> String {
        format!(
            "SELECT {} FROM {}{} ORDER BY {} OFFSET {offset} LIMIT 1",
            self.key_text(),
            self.from,
            self.condition(range),
            self.order_by()
        )
    }

    pub(super) fn listing_sql(&self, range: &Range) -> String {
        format!(
            "SELECT {}, md5({}) FROM {}{} ORDER BY {}",
            self.key_text(),
            self.row_text,
            self.from,
            self.condition(range),
            self.order_by()
        )
    }
}

/// `count - 1` keys that cut sorted `keys` into `count` parts of equal size.
pub(super) fn split_points(keys: &[Vec<String>], count: usize) -> Vec<Vec<String>> {
    let count = count.clamp(1, keys.len().max(1));
    let mut points: Vec<Vec<String>> = (1..count)
        .map(|i| keys[i * keys.len() / count].clone())
        .collect();
    points.dedup();
    points
}

/// The ranges below, between and above sorted split points.
pub(super) fn ranges_between(points: Vec<Vec<String>>) -> Vec<Range> {
    let mut ranges = Vec::with_capacity(points.len() + 1);
    let mut lo = None;
    for p in points {
        ranges.push(Range {
            lo: lo.take(),
            hi: Some(p.clone()),
        });
        lo = Some(p);
    }
    ranges.push(Range { lo, hi: None });
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(values: &[&[&str]]) -> Vec<Vec<String>> {
        values
            .iter()
            .map(|v| v.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    fn sql(key: &[(&str, &str)], filter: Option<&str>) -> TableSql {
        TableSql {
            from: "ONLY \"public\".\"t\"".into(),
            row_text: "ROW(\"a\", \"b\")::text".into(),
            filter: filter.map(String::from),
            key: key
                .iter()
                .map(|(n, t)| KeyColumn {
                    name: n.to_string(),
                    expr: format!("\"t\".{}", quote_ident(n)),
                    cast: t.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn split_points_cut_the_sample_evenly() {
        let k = keys(&[&["1"], &["2"], &["3"], &["4"], &["5"], &["6"]]);
        assert_eq!(split_points(&k, 3), keys(&[&["3"], &["5"]]));
        assert_eq!(split_points(&k, 1), Vec::<Vec<String>>::new());
        assert_eq!(
            split_points(&k, 100).len(),
            5,
            "at most one range per sampled key"
        );
        assert!(split_points(&[], 4).is_empty());
    }

    #[test]
    fn ranges_cover_the_whole_key_space() {
        let r = ranges_between(keys(&[&["3"], &["5"]]));
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].lo, None);
        assert_eq!(r[0].hi, r[1].lo);
        assert_eq!(r[1].hi, r[2].lo);
        assert_eq!(r[2].hi, None);
        assert_eq!(ranges_between(Vec::new()), vec![Range::default()]);
    }

    #[test]
    fn bounds_are_typed_literals_and_rows_compare_lexicographically() {
        let one = sql(&[("id", "bigint")], Some("n < 3"));
        let range = Range {
            lo: Some(vec!["5".into()]),
            hi: Some(vec!["9".into()]),
        };
        assert_eq!(
            one.condition(&range),
            " WHERE \"t\".\"id\" >= '5'::bigint AND \"t\".\"id\" < '9'::bigint AND (n < 3)"
        );
        let two = sql(&[("a", "integer"), ("b", "text")], None);
        let range = Range {
            lo: Some(vec!["1".into(), "it's".into()]),
            hi: None,
        };
        assert_eq!(
            two.condition(&range),
            " WHERE (\"t\".\"a\", \"t\".\"b\") >= ('1'::integer, 'it''s'::text)"
        );
        assert_eq!(two.condition(&Range::default()), "");
        // Qualified: a bare `"a"` in ORDER BY would sort by the output column `"a"::text`.
        let listing = two.listing_sql(&Range::default());
        assert!(
            listing.starts_with("SELECT \"a\"::text, \"b\"::text, md5("),
            "{listing}"
        );
        assert!(
            listing.ends_with("ORDER BY \"t\".\"a\", \"t\".\"b\""),
            "{listing}"
        );
    }
}
