//! Interactive selection: on a terminal without selection flags, `init` and `validate` ask which
//! databases, tables, schema-only tables and time windows to use, then run exactly as if the
//! answers had been given as flags — which they print, so the run can be repeated unattended.

use crate::cli::{Endpoints, Selection};
use crate::commands::Ui;
use crate::rules::{TableRef, TimeFilter};
use crate::session;
use anyhow::Result;
use pipeline::{Error, Side, SourceOptions};
use seren_postgres::{catalog, clone, PgTarget};
use std::io::{BufRead, Write};

/// Which questions a command asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Questions {
    /// `init`: databases (PostgreSQL sources), tables, schema-only tables and time windows.
    Copy,
    /// `validate`: the tables of the source's database.
    Tables,
}

/// Whether to ask: a person at a terminal, no `--yes`, no selection flags.
pub fn wanted(ui: &Ui, yes: bool, selection: &Selection) -> bool {
    ui.interactive && !yes && selection.is_empty()
}

/// Ask the questions, put the answers into `selection`, and print them as flags. End of input
/// (Ctrl-D) cancels: nothing has been written.
pub async fn choose(
    endpoints: &Endpoints,
    selection: &mut Selection,
    questions: Questions,
) -> Result<()> {
    if session::is_postgres(&endpoints.source) {
        choose_postgres(endpoints, selection, questions).await?;
    } else {
        let s = session::open(endpoints, SourceOptions::default()).await?;
        let tables = s.source.list_tables().await?;
        let title = format!("Tables in {} {}", s.source.kind(), s.source.location());
        let picked = pick(&title, &tables, OnEnter::All)?;
        if picked.len() < tables.len() {
            selection.include_tables = picked.into_iter().map(|i| tables[i].clone()).collect();
        }
    }
    let flags = selection.as_flags();
    println!(
        "Selection: {}",
        if flags.is_empty() {
            "everything (no filter flags)".to_string()
        } else {
            flags.join(" ")
        }
    );
    Ok(())
}

async fn choose_postgres(
    endpoints: &Endpoints,
    selection: &mut Selection,
    questions: Questions,
) -> Result<()> {
    let source = PgTarget::parse(&endpoints.source, Side::Source)?;
    let url_db = source.dbname().to_string();
    let databases = match questions {
        Questions::Tables => vec![url_db.clone()],
        Questions::Copy => {
            let all = clone::databases(&source).await?;
            let url_index = all.iter().position(|d| *d == url_db);
            let default = url_index.map_or(OnEnter::All, OnEnter::One);
            let title = format!(
                "Databases on {} (each is copied to the same-named target database)",
                source.display()
            );
            let picked = pick(&title, &all, default)?;
            picked.into_iter().map(|i| all[i].clone()).collect()
        }
    };
    let several = databases.len() > 1 || databases.first() != Some(&url_db);
    if several {
        selection.include_databases = databases.clone();
    }
    for db in &databases {
        let client = source.with_dbname(db).connect().await?;
        // Partitions follow their partitioned table; byte order, whatever the collation.
        let mut tables: Vec<TableRef> = catalog::tables(&client)
            .await?
            .into_iter()
            .filter(|t| t.partition_root.is_none())
            .map(|t| TableRef {
                database: several.then(|| db.clone()),
                schema: t.schema,
                table: t.name,
            })
            .collect();
        tables.sort();
        let names: Vec<String> = tables.iter().map(ToString::to_string).collect();
        let picked = pick(&format!("Tables in database {db}"), &names, OnEnter::All)?;
        if picked.len() < tables.len() {
            selection
                .include_tables
                .extend(picked.iter().map(|&i| names[i].clone()));
        }
        if questions == Questions::Tables || picked.is_empty() {
            continue;
        }
        let chosen: Vec<&TableRef> = picked.iter().map(|&i| &tables[i]).collect();
        let chosen_names: Vec<String> = chosen.iter().map(ToString::to_string).collect();
        let title = "Of those, tables to copy without their rows (schema only)";
        let schema_only = pick(title, &chosen_names, OnEnter::None)?;
        selection
            .schema_only_tables
            .extend(schema_only.iter().map(|&i| chosen_names[i].clone()));
        let with_rows = |c: &catalog::TimeColumn| {
            chosen.iter().enumerate().any(|(i, t)| {
                t.schema == c.schema && t.table == c.table && !schema_only.contains(&i)
            })
        };
        let mut columns: Vec<catalog::TimeColumn> = catalog::time_columns(&client)
            .await?
            .into_iter()
            .filter(with_rows)
            .collect();
        columns.sort_by(|a, b| (&a.schema, &a.table).cmp(&(&b.schema, &b.table)));
        if columns.is_empty() {
            continue;
        }
        let labels: Vec<String> = columns
            .iter()
            .map(|c| {
                format!(
                    "{}.{} ({})",
                    table_of(c, db, several),
                    c.column,
                    c.type_name
                )
            })
            .collect();
        let title = "Copy only recent rows of some tables? Pick their timestamp columns";
        let mut windowed: Vec<TableRef> = Vec::new();
        for i in pick(title, &labels, OnEnter::None)? {
            let c = &columns[i];
            let table = table_of(c, db, several);
            if windowed.contains(&table) {
                println!("  {table}: one window per table; keeping the first column picked");
                continue;
            }
            let span = ask_span(&format!("  {} newer than", labels[i]))?;
            let filter = TimeFilter {
                table: table.clone(),
                column: c.column.clone(),
                span,
            };
            selection.time_filters.push(filter.to_string());
            windowed.push(table);
        }
    }
    Ok(())
}

/// What pressing Enter picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnEnter {
    All,
    None,
    One(usize),
}

/// Show a numbered list and read the picked items' indexes (in list order).
fn pick(title: &str, items: &[String], default: OnEnter) -> Result<Vec<usize>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    println!("{title}:");
    for (i, item) in items.iter().enumerate() {
        println!("  {:>3}) {item}", i + 1);
    }
    let hint = match default {
        OnEnter::All => "all".to_string(),
        OnEnter::None => "none".to_string(),
        OnEnter::One(i) => items[i].clone(),
    };
    loop {
        let answer = ask(&format!(
            "Pick (numbers and ranges like 1,3-5; -2 for all but 2; all; none) [{hint}]"
        ))?;
        match parse_picks(&answer, items.len(), default) {
            Ok(picked) => return Ok(picked),
            Err(problem) => println!("  {problem}"),
        }
    }
}

/// Ask for a time span until one parses (`90 days`, `12h`, `6mo`).
fn ask_span(question: &str) -> Result<String> {
    loop {
        let answer = ask(&format!("{question} (e.g. 90 days, 12h, 6mo)"))?;
        let probe = format!("t:c:{answer}");
        match TimeFilter::parse(&probe, false) {
            Ok(f) => return Ok(f.span),
            Err(e) => println!("  {e}"),
        }
    }
}

/// Print `question` and read one line; end of input cancels.
fn ask(question: &str) -> Result<String> {
    print!("{question}: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        println!();
        return Err(Error::cancelled()
            .context("no answer (end of input): nothing was written")
            .into());
    }
    Ok(line.trim().to_string())
}

/// Parse an answer to [`pick`]: empty → the default; `all`; `none`; numbers and ranges
/// (`1,3-5`, 1-based); or only exclusions (`-2,-4`: all but those).
fn parse_picks(answer: &str, len: usize, default: OnEnter) -> Result<Vec<usize>, String> {
    let all = || (0..len).collect::<Vec<_>>();
    match answer.trim().to_ascii_lowercase().as_str() {
        "" => {
            return Ok(match default {
                OnEnter::All => all(),
                OnEnter::None => Vec::new(),
                OnEnter::One(i) => vec![i],
            })
        }
        "all" | "*" => return Ok(all()),
        "none" => return Ok(Vec::new()),
        _ => {}
    }
    let number = |s: &str| -> Result<usize, String> {
        match s.trim().parse::<usize>() {
            Ok(n) if (1..=len).contains(&n) => Ok(n - 1),
            _ => Err(format!("`{}` is not a number from 1 to {len}", s.trim())),
        }
    };
    let parts: Vec<&str> = answer.split([',', ' ']).filter(|p| !p.is_empty()).collect();
    let excluding = parts.iter().all(|p| p.starts_with('-'));
    let mut chosen = vec![excluding; len];
    for part in parts {
        if excluding {
            chosen[number(&part[1..])?] = false;
        } else if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(format!("range `{part}` runs backwards"));
            }
            chosen[a..=b].iter_mut().for_each(|c| *c = true);
        } else {
            chosen[number(part)?] = true;
        }
    }
    Ok((0..len).filter(|&i| chosen[i]).collect())
}

/// The table of `column` as a selection flag names it.
fn table_of(column: &catalog::TimeColumn, db: &str, several: bool) -> TableRef {
    TableRef {
        database: several.then(|| db.to_string()),
        schema: column.schema.clone(),
        table: column.table.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_numbers_ranges_exclusions_and_defaults() {
        assert_eq!(parse_picks("", 4, OnEnter::All), Ok(vec![0, 1, 2, 3]));
        assert_eq!(parse_picks("", 4, OnEnter::None), Ok(vec![]));
        assert_eq!(parse_picks("", 4, OnEnter::One(2)), Ok(vec![2]));
        assert_eq!(parse_picks("none", 4, OnEnter::All), Ok(vec![]));
        assert_eq!(parse_picks("ALL", 4, OnEnter::None), Ok(vec![0, 1, 2, 3]));
        assert_eq!(parse_picks("3,1", 4, OnEnter::All), Ok(vec![0, 2]));
        assert_eq!(parse_picks("2-4", 4, OnEnter::All), Ok(vec![1, 2, 3]));
        assert_eq!(parse_picks("1 3", 4, OnEnter::All), Ok(vec![0, 2]));
        assert_eq!(parse_picks("-2,-4", 4, OnEnter::None), Ok(vec![0, 2]));
    }

    #[test]
    fn bad_picks_say_what_is_wrong() {
        assert!(parse_picks("5", 4, OnEnter::All)
            .unwrap_err()
            .contains("from 1 to 4"));
        assert!(parse_picks("x", 4, OnEnter::All)
            .unwrap_err()
            .contains("`x` is not a number"));
        assert!(parse_picks("3-1", 4, OnEnter::All)
            .unwrap_err()
            .contains("backwards"));
    }
}
