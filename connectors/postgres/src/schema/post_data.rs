//! Splitting pg_restore's post-data script into its TOC entries.
//!
//! With `--verbose`, pg_restore's plain output puts a header before each entry:
//!
//! ```text
//! --
//! -- TOC entry 3241 (class 1259 OID 16429)
//! -- Dependencies: 219 3240
//! -- Name: parted_1_k_idx; Type: INDEX; Schema: public; Owner: postgres
//! --
//! ```
//!
//! Headers are found only at the top level of the script (see `lex`), so a comment text or a
//! name that imitates one cannot split an entry. Each header's dump id, class and OID must match
//! a line of `pg_restore --list`, and its name line must agree with that line; every listed
//! entry must appear exactly once. Anything else is an error, never a wrong split.
//!
//! pg_restore emits the session settings an entry needs (`SET default_tablespace = …`) just
//! *before* its header, so settings at the end of one block are moved to the entries after it.

use super::lex::{self, Mark};
use super::{PostData, PostDataEntry};
use crate::conn::{query_error, PgTarget};
use pipeline::Result;
use std::collections::HashMap;

/// `pg_class`, whose OID is fixed in every PostgreSQL release.
const PG_CLASS: u32 = 1259;

/// One line of `pg_restore --list`: `dumpId; tableoid oid DESC SCHEMA TAG OWNER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TocLine {
    pub dump_id: u32,
    pub tableoid: u32,
    pub oid: u32,
    /// `DESC SCHEMA TAG OWNER` (names may contain spaces, so not split here).
    pub rest: String,
}

/// The entry lines of a `pg_restore --list` output.
pub(crate) fn parse_toc(list: &str) -> Result<Vec<TocLine>, String> {
    let mut out = Vec::new();
    for line in list.lines() {
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let parsed = (|| {
            let (id, rest) = line.split_once("; ")?;
            let mut parts = rest.splitn(3, ' ');
            Some(TocLine {
                dump_id: id.parse().ok()?,
                tableoid: parts.next()?.parse().ok()?,
                oid: parts.next()?.parse().ok()?,
                rest: parts.next()?.to_string(),
            })
        })();
        out.push(parsed.ok_or_else(|| format!("unexpected pg_restore --list line `{line}`"))?);
    }
    Ok(out)
}

/// For each TOC entry whose object belongs to a table, that table, from the source catalog
/// (under `snapshot`, the one pg_dump used, when given).
pub(crate) async fn lookup_tables(
    source: &PgTarget,
    snapshot: Option<&str>,
    toc: &[TocLine],
) -> Result<HashMap<u32, (String, String)>> {
    let mut ids = Vec::new();
    let mut cats = Vec::new();
    let mut objs = Vec::new();
    for t in toc {
        // ROW SECURITY entries carry the table's OID with no catalog.
        let cat = if t.tableoid == 0 && t.rest.starts_with("ROW SECURITY ") {
            PG_CLASS
        } else {
            t.tableoid
        };
        if cat != 0 && t.oid != 0 {
            ids.push(t.dump_id as i32);
            cats.push(cat);
            objs.push(t.oid);
        }
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let side = source.side();
    let client = source.connect().await?;
    let what = format!(
        "looking up the tables of indexes and constraints on {}",
        source.display()
    );
    if let Some(snapshot) = snapshot {
        let begin = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            crate::ddl::quote_literal(snapshot)
        );
        client
            .batch_execute(&begin)
            .await
            .map_err(|e| query_error(side, &what, e))?;
    }
    let rows = client
        .query(
            "SELECT x.id, n.nspname::text, r.relname::text
             FROM unnest($1::int4[], $2::oid[], $3::oid[]) AS x(id, cat, obj)
             CROSS JOIN LATERAL (SELECT CASE x.cat
                 WHEN 'pg_class'::regclass::oid THEN
                     (SELECT CASE WHEN c.relkind IN ('i', 'I')
                                  THEN (SELECT i.indrelid FROM pg_index i
                                        WHERE i.indexrelid = c.oid)
                                  ELSE c.oid END
                      FROM pg_class c WHERE c.oid = x.obj)
                 WHEN 'pg_constraint'::regclass::oid THEN
                     (SELECT NULLIF(conrelid, 0) FROM pg_constraint WHERE oid = x.obj)
                 WHEN 'pg_trigger'::regclass::oid THEN
                     (SELECT tgrelid FROM pg_trigger WHERE oid = x.obj)
                 WHEN 'pg_rewrite'::regclass::oid THEN
                     (SELECT ev_class FROM pg_rewrite WHERE oid = x.obj)
                 WHEN 'pg_policy'::regclass::oid THEN
                     (SELECT polrelid FROM pg_policy WHERE oid = x.obj)
               END AS rel) l
             JOIN pg_class r ON r.oid = l.rel
             JOIN pg_namespace n ON n.oid = r.relnamespace",
            &[&ids, &cats, &objs],
        )
        .await
        .map_err(|e| query_error(side, &what, e))?;
    if snapshot.is_some() {
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| query_error(side, &what, e))?;
    }
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i32>(0) as u32, (r.get(1), r.get(2))))
        .collect())
}

/// A parsed entry header.
struct Header {
    /// Where the header's opening `--` line starts.
    start: usize,
    /// Where the entry's SQL starts (after the closing `--` line).
    body: usize,
    dump_id: u32,
    tableoid: u32,
    oid: u32,
    dependencies: Vec<u32>,
    name_line: String,
}

/// Split the `--verbose --section=post-data` script into the entries of `toc`.
pub(crate) fn split(
    script: &str,
    toc: &[TocLine],
    tables: &HashMap<u32, (String, String)>,
) -> Result<PostData, String> {
    let script = lex::strip_restrict(script)?;
    let headers = headers(&script)?;
    let by_id: HashMap<u32, &TocLine> = toc.iter().map(|t| (t.dump_id, t)).collect();
    let preamble = script[..headers.first().map_or(script.len(), |h| h.start)]
        .trim()
        .to_string();

    let mut settings: Vec<(String, String)> = Vec::new();
    let mut entries: Vec<PostDataEntry> = Vec::with_capacity(headers.len());
    let mut deps: Vec<Vec<u32>> = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let t = by_id.get(&h.dump_id).ok_or_else(|| {
            format!(
                "post-data entry {} is not in the table of contents",
                h.dump_id
            )
        })?;
        if (t.tableoid, t.oid) != (h.tableoid, h.oid) {
            return Err(format!(
                "post-data entry {} is class {} OID {} in the script but {} {} in the table \
                 of contents",
                h.dump_id, h.tableoid, h.oid, t.tableoid, t.oid
            ));
        }
        let (kind, schema, tag) = match_name(&h.name_line, &t.rest).ok_or_else(|| {
            format!(
                "post-data entry {}: header `{}` does not match the table of contents line \
                 `{}`",
                h.dump_id, h.name_line, t.rest
            )
        })?;

        let end = headers.get(i + 1).map_or(script.len(), |n| n.start);
        let statements = lex::statements(&script[h.body..end]);
        let mut prefix: String = settings.iter().map(|(_, s)| format!("{s}\n")).collect();
        let own = statements
            .iter()
            .rposition(|s| setting_key(s).is_none())
            .map_or(0, |p| p + 1);
        for stmt in &statements {
            if let Some(key) = setting_key(stmt) {
                settings.retain(|(k, _)| *k != key);
                settings.push((key, lex::strip_leading_comments(stmt).to_string()));
            }
        }
        prefix.push_str(statements[..own].concat().trim());
        entries.push(PostDataEntry {
            dump_id: h.dump_id,
            table: tables.get(&h.dump_id).cloned(),
            kind,
            schema,
            tag,
            sql: prefix.trim().to_string(),
        });
        deps.push(h.dependencies.clone());
    }

    let mut seen: HashMap<u32, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if seen.insert(e.dump_id, i).is_some() {
            return Err(format!(
                "post-data entry {} appears twice in the script",
                e.dump_id
            ));
        }
    }
    let missing: Vec<String> = toc
        .iter()
        .filter(|t| !seen.contains_key(&t.dump_id))
        .map(|t| format!("{} ({})", t.dump_id, t.rest))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "post-data entries missing from the script: {}",
            missing.join(", ")
        ));
    }

    // An INDEX ATTACH entry depends on the partition's index (same schema and name) and the
    // parent's: its table is the partition.
    for i in 0..entries.len() {
        if entries[i].kind != "INDEX ATTACH" || entries[i].table.is_some() {
            continue;
        }
        let found = deps[i].iter().find_map(|d| {
            let dep = &entries[*seen.get(d)?];
            (dep.kind == "INDEX" && dep.schema == entries[i].schema && dep.tag == entries[i].tag)
                .then(|| dep.table.clone())
                .flatten()
        });
        entries[i].table = found;
    }
    Ok(PostData { preamble, entries })
}

/// Find the entry headers of `script`: a `-- TOC entry` comment line preceded by a `--` line,
/// followed by comment lines up to a closing `--` line.
fn headers(script: &str) -> Result<Vec<Header>, String> {
    let comments: Vec<std::ops::Range<usize>> = lex::marks(script)
        .into_iter()
        .filter_map(|m| match m {
            Mark::LineComment(r) if r.start == 0 || script.as_bytes()[r.start - 1] == b'\n' => {
                Some(r)
            }
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (i, r) in comments.iter().enumerate() {
        let Some(entry) = script[r.clone()].strip_prefix("-- TOC entry ") else {
            continue;
        };
        let bad = || format!("malformed post-data entry header `{}`", &script[r.clone()]);
        let opener = i
            .checked_sub(1)
            .map(|p| &comments[p])
            .filter(|p| &script[(*p).clone()] == "--" && p.end + 1 == r.start)
            .ok_or_else(bad)?;
        let (dump_id, class) = entry.split_once(" (class ").ok_or_else(bad)?;
        let (tableoid, oid) = class
            .strip_suffix(')')
            .and_then(|c| c.split_once(" OID "))
            .ok_or_else(bad)?;
        let mut h = Header {
            start: opener.start,
            body: 0,
            dump_id: dump_id.parse().map_err(|_| bad())?,
            tableoid: tableoid.parse().map_err(|_| bad())?,
            oid: oid.parse().map_err(|_| bad())?,
            dependencies: Vec::new(),
            name_line: String::new(),
        };
        let mut prev = r.end;
        for c in &comments[i + 1..] {
            if c.start != prev + 1 {
                return Err(bad());
            }
            let text = &script[c.clone()];
            if text == "--" {
                h.body = c.end;
                break;
            }
            if let Some(d) = text.strip_prefix("-- Dependencies: ") {
                h.dependencies = d.split(' ').filter_map(|d| d.parse().ok()).collect();
            } else if let Some(n) = text.strip_prefix("-- Name: ") {
                h.name_line = n.to_string();
            }
            prev = c.end;
        }
        if h.body == 0 || h.name_line.is_empty() {
            return Err(bad());
        }
        out.push(h);
    }
    Ok(out)
}

/// (kind, schema, tag) from a header's `TAG; Type: KIND; Schema: SCHEMA; Owner: …` that agrees
/// with the TOC line's `KIND SCHEMA TAG OWNER`. Names may contain the separators, so every
/// split is tried; exactly one must agree.
fn match_name(name_line: &str, toc_rest: &str) -> Option<(String, String, String)> {
    let at = |pat: &str| -> Vec<usize> { name_line.match_indices(pat).map(|m| m.0).collect() };
    let (types, schemas, owners) = (at("; Type: "), at("; Schema: "), at("; Owner: "));
    let mut found: Option<(String, String, String)> = None;
    for &t in &types {
        let kind = &name_line[t + "; Type: ".len()..];
        for &s in schemas.iter().filter(|&&s| s > t) {
            let kind = &kind[..s - t - "; Type: ".len()];
            if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_uppercase() || b == b' ') {
                continue;
            }
            for &o in owners.iter().filter(|&&o| o > s) {
                let schema = &name_line[s + "; Schema: ".len()..o];
                let tag = &name_line[..t];
                if toc_rest.starts_with(&format!("{kind} {schema} {tag} ")) {
                    let schema = if schema == "-" { "" } else { schema };
                    let candidate = (kind.to_string(), schema.to_string(), tag.to_string());
                    match &found {
                        Some(f) if *f != candidate => return None,
                        _ => found = Some(candidate),
                    }
                }
            }
        }
    }
    found
}

/// The session setting a statement makes (`SET x …`, `RESET x`, `SET SESSION AUTHORIZATION`,
/// `SELECT pg_catalog.set_config('x', …)`), by setting name.
fn setting_key(stmt: &str) -> Option<String> {
    let s = lex::strip_leading_comments(stmt).to_ascii_lowercase();
    if s.starts_with("set session authorization") || s.starts_with("reset session authorization") {
        return Some("session authorization".into());
    }
    if let Some(rest) = s
        .strip_prefix("select pg_catalog.set_config('")
        .or_else(|| s.strip_prefix("select set_config('"))
    {
        return rest.split('\'').next().map(str::to_string);
    }
    let rest = s
        .strip_prefix("set ")
        .or_else(|| s.strip_prefix("reset "))?;
    let name: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = ";\n; Selected TOC Entries:\n;\n\
        3239; 1259 16416 INDEX public idx; Type: X postgres\n\
        3401; 0 0 COMMENT public INDEX \"idx; Type: X\" postgres\n\
        3240; 1259 16442 INDEX public zz postgres\n\
        3241; 1259 16429 INDEX public p1_k postgres\n\
        3245; 0 0 INDEX ATTACH public p1_k postgres\n";

    const SCRIPT: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n\
        SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n\
        SET default_tablespace = '';\n\n\
        --\n-- TOC entry 3239 (class 1259 OID 16416)\n-- Dependencies: 217\n\
        -- Name: idx; Type: X; Type: INDEX; Schema: public; Owner: postgres\n-- Data Pos: 0\n--\n\n\
        CREATE INDEX \"idx; Type: X\" ON public.child USING btree (parent);\n\n\n\
        --\n-- TOC entry 3401 (class 0 OID 0)\n-- Dependencies: 3239\n\
        -- Name: INDEX \"idx; Type: X\"; Type: COMMENT; Schema: public; Owner: postgres\n--\n\n\
        COMMENT ON INDEX public.\"idx; Type: X\" IS 'l1\n--\n-- TOC entry 3240 (class 1259 OID 16442)\n--\n';\n\n\n\
        SET default_tablespace = fast;\n\n\
        --\n-- TOC entry 3240 (class 1259 OID 16442)\n-- Dependencies: 217\n\
        -- Name: zz; Type: INDEX; Schema: public; Owner: -; Tablespace: fast\n--\n\n\
        CREATE INDEX zz ON public.child USING btree (id);\n\n\n\
        SET default_tablespace = '';\n\n\
        --\n-- TOC entry 3241 (class 1259 OID 16429)\n\
        -- Name: p1_k; Type: INDEX; Schema: public; Owner: -\n--\n\n\
        CREATE INDEX p1_k ON public.p1 USING btree (k);\n\n\n\
        --\n-- TOC entry 3245 (class 0 OID 0)\n-- Dependencies: 3241 3240 219 218\n\
        -- Name: p1_k; Type: INDEX ATTACH; Schema: public; Owner: -\n--\n\n\
        ALTER INDEX public.p_k ATTACH PARTITION public.p1_k;\n\n\
        -- Completed on 2026\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n";

    fn tables() -> HashMap<u32, (String, String)> {
        [
            (3239, ("public".into(), "child".into())),
            (3240, ("public".into(), "child".into())),
            (3241, ("public".into(), "p1".into())),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn splits_entries_and_carries_settings() {
        let toc = parse_toc(LIST).unwrap();
        assert_eq!(
            toc[1].rest,
            "COMMENT public INDEX \"idx; Type: X\" postgres"
        );
        let p = split(SCRIPT, &toc, &tables()).unwrap();
        assert!(p.preamble.starts_with("--\n-- PostgreSQL database dump"));
        assert!(p.preamble.ends_with("SET default_tablespace = '';"));
        assert!(!p.preamble.contains("restrict"));
        let e = &p.entries;
        assert_eq!(e.len(), 5);
        assert_eq!(
            (e[0].kind.as_str(), e[0].schema.as_str(), e[0].tag.as_str()),
            ("INDEX", "public", "idx; Type: X")
        );
        assert_eq!(
            e[0].sql,
            "CREATE INDEX \"idx; Type: X\" ON public.child USING btree (parent);"
        );
        assert_eq!(e[1].kind, "COMMENT");
        assert_eq!(e[1].table, None);
        assert!(e[1].sql.starts_with("COMMENT ON INDEX") && e[1].sql.ends_with("--\n';"));
        assert_eq!(
            e[2].sql,
            "SET default_tablespace = fast;\nCREATE INDEX zz ON public.child USING btree (id);"
        );
        assert_eq!(
            e[3].sql,
            "SET default_tablespace = '';\nCREATE INDEX p1_k ON public.p1 USING btree (k);"
        );
        assert_eq!(e[4].kind, "INDEX ATTACH");
        assert_eq!(e[4].table, Some(("public".into(), "p1".into())));
        assert!(e[4].sql.ends_with("ATTACH PARTITION public.p1_k;"));
    }

    #[test]
    fn mismatches_are_errors() {
        let mut toc = parse_toc(LIST).unwrap();
        toc.push(TocLine {
            dump_id: 9999,
            tableoid: 0,
            oid: 0,
            rest: "COMMENT - x postgres".into(),
        });
        let err = split(SCRIPT, &toc, &tables()).unwrap_err();
        assert!(err.contains("missing") && err.contains("9999"), "{err}");
        let toc =
            parse_toc(&LIST.replace("16442 INDEX public zz", "16442 INDEX public yy")).unwrap();
        assert!(split(SCRIPT, &toc, &tables())
            .unwrap_err()
            .contains("does not match"));
        let toc = parse_toc(LIST).unwrap();
        assert!(split(
            &SCRIPT.replace("(class 1259 OID 16429)", "(class 1259 OID 1)"),
            &toc,
            &tables()
        )
        .is_err());
    }

    #[test]
    fn setting_keys() {
        assert_eq!(
            setting_key("\nSET default_tablespace = '';").as_deref(),
            Some("default_tablespace")
        );
        assert_eq!(
            setting_key("SELECT pg_catalog.set_config('search_path', '', false);").as_deref(),
            Some("search_path")
        );
        assert_eq!(
            setting_key("RESET SESSION AUTHORIZATION;").as_deref(),
            Some("session authorization")
        );
        assert_eq!(setting_key("CREATE INDEX a ON b (c);"), None);
    }
}
