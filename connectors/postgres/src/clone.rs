//! PostgreSQL → PostgreSQL copy of one database: plan under one snapshot, restore the pre-data
//! schema (with the resume state, in one transaction), stream every table as raw COPY rows,
//! build each table's indexes as soon as its rows are in, then the rest of the post-data
//! schema, sequences, large objects and statistics.

use crate::catalog::{self, display_name, PgTable, STATE_SCHEMA};
use crate::clone_sink::{CloneTable, ConstraintIndex, PgCloneSink};
use crate::conn::{query_error, PgTarget};
use crate::ddl::{quote_ident, quote_literal};
use crate::replication::{
    check_slot_free, create_publication, create_slot_with_snapshot, create_subscription,
    drop_replication, set_replica_identity_full, tables_without_identity, ReplicationNames,
    SlotSnapshot,
};
use crate::schema::{run_sql, DumpOptions, PostDataEntry, SchemaDump};
use crate::shared::{advisory_lock, claims_sql, Shared};
use crate::source::PgSource;
use crate::state::{self, mark_step, RunState};
use crate::tools::ClientTools;
use pipeline::{
    Error, ErrorKind, Partition, Progress, Result, RunOptions, Side, Source, TableWork,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

/// Which tables and rows of one database are copied (the CLI's filters, resolved per database).
pub trait TableRules: Send + Sync {
    /// Is the table copied at all (schema, and rows unless schema-only)?
    fn selects(&self, schema: &str, table: &str) -> bool;
    /// Is only its schema copied?
    fn schema_only(&self, schema: &str, table: &str) -> bool;
    /// Its row filter (SQL predicate), if any.
    fn predicate(&self, schema: &str, table: &str) -> Option<String>;
    /// Stable text of the rules, part of the resume fingerprint.
    fn fingerprint(&self) -> String;
    /// Every table the rules name, with the flag or config key naming it: (flag, schema,
    /// table). Each must exist in the source.
    fn named(&self) -> Vec<(String, String, String)>;
}

/// Settings of a copy.
#[derive(Debug, Clone)]
pub struct CloneOptions {
    /// Tables copied at once.
    pub jobs: usize,
    /// Index and constraint builds at once.
    pub index_jobs: usize,
    /// Split tables bigger than this into block ranges of this size (0: never split).
    pub split_bytes: u64,
    /// Replace tables (or the whole database) that already exist in the target.
    pub drop_existing: bool,
    /// Resume an interrupted run of the same copy (else start over).
    pub resume: bool,
    /// Keep the resume state schema after success.
    pub keep_state: bool,
    /// Do not restore object owners.
    pub no_owner: bool,
    /// Do not restore privileges.
    pub no_privileges: bool,
    /// Copy large objects.
    pub blobs: bool,
    /// Roles are copied before the run (`--roles`), so missing ones are not a concern.
    pub roles_copied: bool,
    /// Set `REPLICA IDENTITY FULL` on source tables that have no primary key or replica
    /// identity, so continuous sync can replicate their UPDATEs and DELETEs.
    pub set_replica_identity_full: bool,
    /// Shared with other worker processes (`seren-replicator worker`).
    pub shared: Option<Shared>,
}

/// A planned copy of one database, holding the source snapshot open.
pub struct ClonePlan {
    /// Source database name.
    pub database: String,
    /// The source, under the run's snapshot.
    pub source: Arc<PgSource>,
    /// The target database.
    pub target: PgTarget,
    /// Tables whose rows are copied, with the partitions still to copy.
    pub work: Vec<TableWork>,
    /// Tables copied as schema only.
    pub schema_only: Vec<String>,
    /// Whether this resumes an interrupted run.
    pub resuming: bool,
    /// Things the user should know.
    pub warnings: Vec<String>,
    tools: ClientTools,
    tables: Vec<PgTable>,
    excluded: Vec<(String, String)>,
    plan: BTreeMap<String, Vec<Partition>>,
    reset: Vec<String>,
    steps_done: HashSet<String>,
    /// Foreign keys (schema, table, name) referencing tables outside the copy: not created.
    dangling: HashSet<(String, String, String)>,
    /// Continuous sync's names, when it follows the copy.
    replication: Option<ReplicationNames>,
    /// Source tables to set `REPLICA IDENTITY FULL` on before sync.
    identity_full: Vec<PgTable>,
    /// Tables (and row filters) the publication lists.
    publish: Vec<(PgTable, Option<String>)>,
    /// Source server major version.
    major: u32,
    fingerprint: String,
    target_exists: bool,
    replace: Replace,
    opts: CloneOptions,
}

/// What to do about objects already in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replace {
    /// Nothing there (or resuming).
    Nothing,
    /// Drop and recreate the whole target database (every table is copied).
    Database,
    /// Drop the copied objects before restoring them.
    Objects,
}

/// What a finished copy did.
#[derive(Debug, Clone, Default)]
pub struct CloneReport {
    /// Per-table outcomes of the data phase.
    pub tables: Vec<pipeline::TableOutcome>,
    /// Things the user should know that did not stop the run.
    pub warnings: Vec<String>,
    /// Large objects copied.
    pub large_objects: usize,
    /// Sequences set.
    pub sequences: usize,
    /// The replication objects, when continuous sync now runs.
    pub replication: Option<ReplicationNames>,
}

impl ClonePlan {
    /// Open the source snapshot, read its catalog, apply `rules`, check the target (conflicts,
    /// a previous run to resume) and plan the partitions. Writes nothing.
    /// With `replication` names, `run` sets up continuous sync: publication and slot before
    /// the copy, subscription after it.
    pub async fn prepare(
        source: &PgTarget,
        target: &PgTarget,
        rules: &dyn TableRules,
        opts: &CloneOptions,
        replication: Option<ReplicationNames>,
    ) -> Result<ClonePlan> {
        let joining = opts.shared.as_ref().and_then(|s| s.join.as_deref());
        if opts.shared.is_some() && replication.is_some() {
            return Err(Error::config(
                "a copy shared by workers cannot set up continuous sync: one process must hold \
                 the replication slot's snapshot; copy with --no-sync",
            ));
        }
        let pg = match joining {
            Some(snapshot) => PgSource::join(source.clone(), snapshot).await?,
            None => PgSource::open(source.clone(), None).await?,
        };
        let major = catalog::server_major(pg.catalog(), Side::Source).await?;
        let tools = ClientTools::find(major)?;
        let all = pg.load_tables().await?;
        // A partition cannot exist without its partitioned table: it follows its root.
        let selected = |t: &PgTable| match &t.partition_root {
            Some((s, n)) => rules.selects(s, n),
            None => rules.selects(&t.schema, &t.name),
        };
        let schema_only = |t: &PgTable| {
            rules.schema_only(&t.schema, &t.name)
                || t.partition_root
                    .as_ref()
                    .is_some_and(|(s, n)| rules.schema_only(s, n))
        };
        let predicate = |t: &PgTable| {
            rules.predicate(&t.schema, &t.name).or_else(|| {
                t.partition_root
                    .as_ref()
                    .and_then(|(s, n)| rules.predicate(s, n))
            })
        };
        check_named(rules, &all, &pg.location())?;
        let mut tables = Vec::new();
        let mut excluded = Vec::new();
        let mut schema_only_names = Vec::new();
        let mut filtered = Vec::new();
        for t in all.iter() {
            if !selected(t) {
                excluded.push((t.schema.clone(), t.name.clone()));
                continue;
            }
            if schema_only(t) && t.relkind == 'r' {
                schema_only_names.push(t.display());
            }
            if let Some(p) = predicate(t) {
                check_predicate(&pg, t, &p).await?;
                filtered.push((t.schema.clone(), t.name.clone()));
            }
            tables.push(t.clone());
        }
        pg.check_readable(&tables).await?;
        let copied: HashSet<(String, String)> = tables
            .iter()
            .filter(|t| !schema_only(t))
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        let fks = catalog::foreign_keys(pg.catalog()).await?;
        fk_guard(&filtered, &copied, &fks)?;
        let in_copy: HashSet<(String, String)> = tables
            .iter()
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        let mut warnings = Vec::new();
        let mut dangling = HashSet::new();
        for fk in &fks {
            if in_copy.contains(&fk.from) && !in_copy.contains(&fk.to) {
                warnings.push(format!(
                    "foreign key {} of {} is not created: it references {}, which is not \
                     copied",
                    fk.name,
                    display_name(&fk.from.0, &fk.from.1),
                    display_name(&fk.to.0, &fk.to.1)
                ));
                dangling.insert((fk.from.0.clone(), fk.from.1.clone(), fk.name.clone()));
            }
        }

        let database = source.dbname().to_string();
        let fingerprint = format!(
            "source={} target={} rules={}",
            source.display(),
            target.display(),
            rules.fingerprint()
        );
        let target_exists = database_exists(target).await?;
        let previous = if target_exists {
            state::load(&target.connect().await?).await?
        } else {
            None
        };
        // The interrupted run's snapshot died with it, and its slot started where that snapshot
        // stood: tables copied now under a new snapshot would not line up with that slot.
        if joining.is_some() && previous.is_none() {
            return Err(Error::new(
                ErrorKind::Config,
                Side::Target,
                format!(
                    "the shared copy into {} has no resume state left: it is complete, or was \
                     started over",
                    target.display()
                ),
            ));
        }
        let resuming =
            (opts.resume || joining.is_some()) && previous.is_some() && replication.is_none();
        if opts.resume && previous.is_some() && replication.is_some() {
            warnings.push(
                "the interrupted run is started over, not resumed: continuous sync needs every \
                 table copied under the snapshot its replication slot starts from"
                    .to_string(),
            );
        }
        if let (true, Some(prev)) = (resuming, &previous) {
            if prev.fingerprint != fingerprint {
                return Err(Error::new(
                    ErrorKind::Config,
                    Side::Target,
                    format!(
                        "target {} holds the state of an interrupted run of a different copy \
                         (schema {STATE_SCHEMA}: {}); this run is {}. Rerun with the same \
                         source, target and filters to resume it, or add --no-resume to start \
                         over (this drops what the interrupted run copied)",
                        target.display(),
                        prev.fingerprint,
                        fingerprint
                    ),
                ));
            }
        }
        let mut opts = opts.clone();
        if !opts.roles_copied && (!opts.no_owner || !opts.no_privileges) {
            let missing = missing_roles(&pg, target, target_exists).await?;
            if !missing.is_empty() {
                warnings.push(format!(
                    "roles {} do not exist on the target: owners and privileges are not \
                     restored (copy the roles first with --roles, or create them)",
                    missing.join(", ")
                ));
                opts.no_owner = true;
                opts.no_privileges = true;
            }
        }
        let every_table =
            excluded.is_empty() && schema_only_names.is_empty() && filtered.is_empty();
        let replace = if resuming {
            Replace::Nothing
        } else if opts.drop_existing || previous.is_some() {
            if every_table && target.dbname() != "postgres" {
                Replace::Database
            } else {
                Replace::Objects
            }
        } else {
            if target_exists {
                conflicts(target, &tables).await?;
            }
            Replace::Nothing
        };

        let data_tables: Vec<&PgTable> = tables
            .iter()
            .filter(|t| t.relkind == 'r' && !schema_only(t))
            .collect();
        let mut identity_full = Vec::new();
        let mut publish = Vec::new();
        if replication.is_some() {
            let owned: Vec<PgTable> = data_tables.iter().map(|t| (*t).clone()).collect();
            identity_full = tables_without_identity(pg.catalog(), &owned).await?;
            if !identity_full.is_empty() && !opts.set_replica_identity_full {
                let names: Vec<String> = identity_full.iter().map(PgTable::display).collect();
                return Err(Error::config(format!(
                    "continuous sync cannot replicate UPDATEs and DELETEs of tables without a \
                     primary key or replica identity: {}; add --set-replica-identity-full \
                     (runs ALTER TABLE … REPLICA IDENTITY FULL on the source), give them a \
                     primary key, or use --no-sync",
                    names.join(", ")
                )));
            }
            publish = owned
                .into_iter()
                .map(|t| {
                    let p = predicate(&t);
                    (t, p)
                })
                .collect();
        }
        let mut plan = BTreeMap::new();
        let mut work = Vec::new();
        let mut reset = Vec::new();
        let (done, steps_done) = match (&previous, resuming) {
            (Some(p), true) => (p.partitions_done.clone(), p.steps_done.clone()),
            _ => Default::default(),
        };
        for t in data_tables {
            let name = t.display();
            let parts = match (&previous, resuming) {
                (Some(RunState { plan: old, .. }), true) => {
                    old.get(&name).cloned().ok_or_else(|| {
                        Error::new(
                            ErrorKind::Config,
                            Side::Target,
                            format!(
                                "the interrupted run did not plan table {name}, which the \
                                 source now has; rerun with --no-resume to start over"
                            ),
                        )
                    })?
                }
                _ => pg.partitions(t, opts.split_bytes, predicate(t).as_deref()),
            };
            plan.insert(name.clone(), parts.clone());
            let done_here = parts
                .iter()
                .filter(|p| done.contains(&(name.clone(), p.index)))
                .count();
            // Joining live workers: their partitions share this snapshot, nothing is reset.
            let todo: Vec<Partition> =
                if done_here > 0 && done_here < parts.len() && joining.is_none() {
                    reset.push(name.clone());
                    parts
                } else {
                    parts
                        .into_iter()
                        .filter(|p| !done.contains(&(name.clone(), p.index)))
                        .collect()
                };
            work.push(TableWork {
                table: PgSource::table_info(t),
                partitions: todo,
            });
        }
        let kept: Vec<&String> = work
            .iter()
            .filter(|w| w.partitions.is_empty())
            .map(|w| &w.table.name)
            .collect();
        if !kept.is_empty() && joining.is_none() {
            warnings.push(format!(
                "resuming: {} finished by the interrupted run {} kept as copied then, an \
                 earlier instant of the source than the rest of this run; rerun with \
                 --no-resume for a copy of one instant",
                kept.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if kept.len() == 1 { "is" } else { "are" }
            ));
        }
        if !reset.is_empty() {
            warnings.push(format!(
                "partly copied tables are copied again whole (a new snapshot cannot be combined \
                 with the interrupted run's): {}",
                reset.join(", ")
            ));
        }
        Ok(ClonePlan {
            database,
            source: Arc::new(pg),
            target: target.clone(),
            work,
            schema_only: schema_only_names,
            resuming,
            warnings,
            tools,
            tables,
            excluded,
            plan,
            reset,
            steps_done,
            dangling,
            replication,
            identity_full,
            publish,
            major,
            fingerprint,
            target_exists,
            replace,
            opts,
        })
    }

    /// Run the copy. Must be called on a tokio runtime with blocking threads available.
    pub async fn run(
        mut self,
        progress: Arc<Progress>,
        cancel: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<CloneReport> {
        let Some(names) = self.replication.clone() else {
            return self.copy(progress, cancel).await;
        };
        let server = self.source.server().clone();
        let slot = match self.start_replication(&names).await {
            Ok(slot) => slot,
            Err(e) => {
                drop_replication(&server, None, &names).await;
                return Err(e);
            }
        };
        let outcome = self.copy(progress, cancel).await;
        drop(slot); // every reader has imported the snapshot by now
        let subscribed = match outcome {
            Ok(report) => create_subscription(&server, &self.target, &names)
                .await
                .map(|()| report),
            Err(e) => Err(e),
        };
        match subscribed {
            Ok(mut report) => {
                report.replication = Some(names);
                Ok(report)
            }
            Err(e) => {
                // Never leave a slot behind: it would hold WAL on the source forever.
                let problems = drop_replication(&server, Some(&self.target), &names).await;
                for p in problems {
                    tracing::warn!("cleaning up replication: {p}");
                }
                Err(e)
            }
        }
    }

    /// Publication, then the slot with its exported snapshot; the source is reopened under
    /// that snapshot so everything copied lines up with where the slot starts.
    async fn start_replication(&mut self, names: &ReplicationNames) -> Result<SlotSnapshot> {
        let server = self.source.server().clone();
        if !self.identity_full.is_empty() {
            set_replica_identity_full(&server, &self.identity_full).await?;
        }
        // Leftovers of an earlier, interrupted run.
        for p in drop_replication(&server, Some(&self.target), names).await {
            tracing::debug!("no earlier replication objects to remove: {p}");
        }
        check_slot_free(&server, names).await?;
        create_publication(&server, names, &self.publish, self.major).await?;
        let slot = create_slot_with_snapshot(&server, names, Duration::from_secs(300)).await?;
        let pg = PgSource::open(server, Some(slot.snapshot.clone())).await?;
        let tables = pg.load_tables().await?;
        for w in &self.work {
            if !tables.iter().any(|t| t.display() == w.table.name) {
                return Err(Error::new(
                    ErrorKind::Schema,
                    Side::Source,
                    format!(
                        "table {} disappeared from the source while the copy was being \
                         planned; run init again",
                        w.table.name
                    ),
                ));
            }
        }
        self.source = Arc::new(pg);
        tracing::info!(slot = %names.subscription, lsn = %slot.consistent_point, "replication slot created");
        Ok(slot)
    }

    /// Schema, rows, post-data, sequences, large objects.
    async fn copy(
        &self,
        progress: Arc<Progress>,
        cancel: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<CloneReport> {
        let mut report = CloneReport {
            warnings: self.warnings.clone(),
            ..Default::default()
        };
        match self.replace {
            Replace::Database => {
                recreate_database(&self.target, self.source.catalog(), self.target_exists).await?
            }
            _ if !self.target_exists => {
                recreate_database(&self.target, self.source.catalog(), false).await?
            }
            _ => {}
        }
        // Replacing some tables of an initialised target: its types, functions and schemas
        // are already there, so only the selected tables are dumped (pg_dump -t). Otherwise
        // everything but the unselected tables (pg_dump -T), so a fresh target gets every type
        // and function the tables need.
        let (include_tables, exclude_tables) = if self.replace == Replace::Objects {
            let selected = self
                .tables
                .iter()
                .map(|t| (t.schema.clone(), t.name.clone()))
                .collect();
            (selected, Vec::new())
        } else {
            (Vec::new(), self.excluded.clone())
        };
        let dump = SchemaDump::dump(
            &self.tools,
            self.source.server(),
            &DumpOptions {
                snapshot: Some(self.source.snapshot().to_string()),
                include_tables,
                exclude_tables,
                exclude_schemas: vec![STATE_SCHEMA.to_string()],
                no_owner: self.opts.no_owner,
                no_privileges: self.opts.no_privileges,
            },
        )
        .await?;
        let target = self.target.clone();
        let restore_pre_data = async {
            if self.resuming {
                return Ok(());
            }
            if self.replace == Replace::Objects {
                drop_objects(&target, &self.tables).await?;
            }
            let mut sql = dump.pre_data_sql().await?;
            sql.push('\n');
            sql.push_str(&state::create_sql(&self.fingerprint, &self.plan));
            run_sql(&self.tools, &target, &sql, true).await
        };
        // Splitting the post-data section needs only the dump: do it meanwhile.
        let (restored, post) = tokio::join!(restore_pre_data, dump.post_data());
        restored?;
        let post = post?;
        if !self.reset.is_empty() {
            let mut client = target.connect().await?;
            for name in &self.reset {
                let t = self.table(name)?;
                state::reset_table(&mut client, &t.sql_name(), name).await?;
            }
        }

        let data: HashSet<(String, String)> = self
            .work
            .iter()
            .filter_map(|w| self.table(&w.table.name).ok())
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        let (per_table, rest): (Vec<PostDataEntry>, Vec<PostDataEntry>) =
            post.entries.into_iter().partition(|e| {
                matches!(e.kind.as_str(), "INDEX" | "CONSTRAINT")
                    && e.table.as_ref().is_some_and(|t| data.contains(t))
            });
        let expression_indexed =
            catalog::tables_with_expression_indexes(self.source.catalog()).await?;
        let mut clone_tables = Vec::with_capacity(self.work.len());
        for w in &self.work {
            let t = self.table(&w.table.name)?.clone();
            let key = Some((t.schema.clone(), t.name.clone()));
            let constraint_indexes = catalog::key_constraints(self.source.catalog(), &t)
                .await?
                .into_iter()
                .map(|k| {
                    let ci = ConstraintIndex {
                        index_sql: k.index_sql,
                        attach_sql: k.attach_sql,
                    };
                    (k.name, ci)
                })
                .collect();
            clone_tables.push(CloneTable {
                analyze_first: !expression_indexed.contains(&t.oid),
                post_data: per_table
                    .iter()
                    .filter(|e| e.table == key)
                    .cloned()
                    .collect(),
                constraint_indexes,
                table: t,
            });
        }
        if let Some(shared) = &self.opts.shared {
            let client = target.connect().await?;
            client
                .batch_execute(&claims_sql(&self.plan))
                .await
                .map_err(|e| query_error(Side::Target, "creating the partition claims", e))?;
            shared.coordinator.joined(self.source.snapshot()).await?;
        }
        let planned = self.opts.shared.as_ref().map(|_| {
            self.plan
                .iter()
                .map(|(t, parts)| (t.clone(), parts.len()))
                .collect()
        });
        let sink = |steps_done: HashSet<String>| {
            Arc::new(PgCloneSink::new(
                target.clone(),
                clone_tables.clone(),
                post.preamble.clone(),
                steps_done,
                self.opts.index_jobs,
                planned.clone(),
            ))
        };
        let run_opts = RunOptions {
            jobs: self.opts.jobs,
            cancel,
        };
        report.tables = self
            .copy_round(
                sink(self.steps_done.clone()),
                self.work.clone(),
                progress.clone(),
                &run_opts,
            )
            .await?;
        let mut steps_done = self.steps_done.clone();
        // Shared: copy what no worker holds until every partition and index is done, then
        // take the final lock; the first worker through does the final steps.
        let mut final_lock = None;
        if let Some(shared) = &self.opts.shared {
            loop {
                let Some(state) = state::load(&target.connect().await?).await? else {
                    return Ok(report); // another worker finished the copy
                };
                let todo: Vec<TableWork> = self
                    .work
                    .iter()
                    .map(|w| TableWork {
                        table: w.table.clone(),
                        partitions: self.plan[&w.table.name]
                            .iter()
                            .filter(|p| {
                                !state
                                    .partitions_done
                                    .contains(&(w.table.name.clone(), p.index))
                            })
                            .cloned()
                            .collect(),
                    })
                    .collect();
                let indexed = self.work.iter().all(|w| {
                    state
                        .steps_done
                        .contains(&crate::clone_sink::post_data_step(&w.table.name))
                });
                if indexed && todo.iter().all(|w| w.partitions.is_empty()) {
                    break;
                }
                if run_opts.cancel.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(Error::cancelled());
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                let more = self
                    .copy_round(sink(state.steps_done), todo, progress.clone(), &run_opts)
                    .await?;
                for (mine, round) in report.tables.iter_mut().zip(more) {
                    mine.rows += round.rows;
                    mine.bytes += round.bytes;
                }
            }
            let client = target.connect().await?;
            let lock = format!("seren-replicator final {}", self.fingerprint);
            advisory_lock(&client, Side::Target, &lock, true).await?;
            let Some(state) = state::load(&client).await? else {
                return Ok(report);
            };
            steps_done = state.steps_done;
            final_lock = Some((client, shared));
        }

        // Connected after the copy: a connection held across it would not survive a target
        // restarted mid-copy (the partitions reconnect and retry; this must too).
        let mut client = target.connect().await?;
        if !steps_done.contains("post-data") {
            report.warnings.extend(
                self.finish_post_data(&target, &post.preamble, &rest)
                    .await?,
            );
        }
        if !steps_done.contains("matviews") {
            self.refresh_materialized_views(&mut client).await?;
        }
        if !steps_done.contains("sequences") {
            report.sequences = self.copy_sequences(&mut client).await?;
        }
        if self.opts.blobs && !steps_done.contains("blobs") {
            report.large_objects = self.copy_large_objects(&mut client).await?;
        }
        if let Some((_, shared)) = &final_lock {
            shared.coordinator.completed().await?;
        }
        if !self.opts.keep_state {
            state::drop_state(&client).await?;
        }
        Ok(report)
    }

    /// One pass of the data phase over `work` (blocking threads; the runtime stays free).
    async fn copy_round(
        &self,
        sink: Arc<PgCloneSink>,
        work: Vec<TableWork>,
        progress: Arc<Progress>,
        opts: &RunOptions,
    ) -> Result<Vec<pipeline::TableOutcome>> {
        let handle = Handle::current();
        let (source, opts) = (self.source.clone(), opts.clone());
        tokio::task::spawn_blocking(move || {
            pipeline::copy_tables(&handle, source, sink, work, progress, &opts)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, Side::Local, format!("copy task failed: {e}")))?
    }

    /// The source table with this display name.
    pub fn table_named(&self, display: &str) -> Option<&PgTable> {
        self.tables.iter().find(|t| t.display() == display)
    }

    fn table(&self, display: &str) -> Result<&PgTable> {
        self.table_named(display).ok_or_else(|| {
            Error::new(
                ErrorKind::Schema,
                Side::Source,
                format!("table {display} vanished from the plan"),
            )
        })
    }

    /// Everything of the post-data schema not built per table (foreign keys, triggers, rules,
    /// partitioned-table indexes, comments…), in one transaction; foreign keys are added
    /// NOT VALID there and validated afterwards, several at once.
    async fn finish_post_data(
        &self,
        target: &PgTarget,
        preamble: &str,
        entries: &[PostDataEntry],
    ) -> Result<Vec<String>> {
        let partitioned: HashSet<(String, String)> = self
            .tables
            .iter()
            .filter(|t| t.relkind == 'p')
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        let mut client = target.connect().await?;
        let err = |what: &str, e| query_error(Side::Target, what, e);
        let tx = client
            .transaction()
            .await
            .map_err(|e| err("starting the post-data step", e))?;
        tx.batch_execute(preamble)
            .await
            .map_err(|e| err("setting up the post-data step", e))?;
        let mut to_validate = Vec::new();
        for e in entries {
            let mut sql = e.sql.clone();
            if e.kind == "FK CONSTRAINT" {
                if let Some((schema, table)) = &e.table {
                    let name = e.tag.strip_prefix(&format!("{table} ")).unwrap_or(&e.tag);
                    if self
                        .dangling
                        .contains(&(schema.clone(), table.clone(), name.to_string()))
                    {
                        continue;
                    }
                    let trimmed = sql.trim_end().trim_end_matches(';').to_string();
                    if !partitioned.contains(&(schema.clone(), table.clone()))
                        && !trimmed.ends_with("NOT VALID")
                    {
                        let name = e
                            .tag
                            .strip_prefix(&format!("{table} "))
                            .unwrap_or(&e.tag)
                            .to_string();
                        to_validate.push((schema.clone(), table.clone(), name));
                        sql = format!("{trimmed} NOT VALID;\n");
                    }
                }
            }
            tx.batch_execute(&sql).await.map_err(|x| {
                err(
                    &format!("creating {} {} (schema {})", e.kind, e.tag, e.schema),
                    x,
                )
            })?;
        }
        mark_step(&tx, "post-data").await?;
        tx.commit()
            .await
            .map_err(|e| err("committing the post-data step", e))?;

        let mut warnings = Vec::new();
        let jobs = self.opts.index_jobs.max(1);
        for batch in to_validate.chunks(jobs) {
            let checks = batch.iter().map(|(schema, table, name)| async move {
                let client = target.connect().await?;
                let sql = format!(
                    "ALTER TABLE {}.{} VALIDATE CONSTRAINT {}",
                    quote_ident(schema),
                    quote_ident(table),
                    quote_ident(name)
                );
                Ok::<_, Error>(client.batch_execute(&sql).await.err().map(|e| {
                    format!(
                        "foreign key {name} on {} kept NOT VALID: the copied rows violate it \
                         ({})",
                        display_name(schema, table),
                        query_error(Side::Target, "validating", e)
                    )
                }))
            });
            for w in futures::future::try_join_all(checks).await? {
                warnings.extend(w);
            }
        }
        Ok(warnings)
    }

    /// Populate the materialized views that are populated in the source (pg_dump's schema
    /// creates them empty), in one transaction. A view built on another is refreshed after it:
    /// failures are retried while others succeed.
    async fn refresh_materialized_views(&self, client: &mut tokio_postgres::Client) -> Result<()> {
        let mut pending = catalog::populated_materialized_views(self.source.catalog()).await?;
        let err = |e| query_error(Side::Target, "refreshing materialized views", e);
        let tx = client.transaction().await.map_err(err)?;
        while !pending.is_empty() {
            let mut failed = Vec::new();
            let mut last_error = None;
            for name in pending.iter() {
                tx.batch_execute("SAVEPOINT seren_refresh")
                    .await
                    .map_err(err)?;
                match tx
                    .batch_execute(&format!("REFRESH MATERIALIZED VIEW {name}"))
                    .await
                {
                    Ok(()) => {}
                    Err(e) => {
                        tx.batch_execute("ROLLBACK TO SAVEPOINT seren_refresh")
                            .await
                            .map_err(err)?;
                        failed.push(name.clone());
                        last_error = Some(e);
                    }
                }
            }
            if failed.len() == pending.len() {
                let e = last_error.expect("a refresh failed");
                return Err(query_error(
                    Side::Target,
                    &format!("refreshing materialized view {}", failed[0]),
                    e,
                ));
            }
            pending = failed;
        }
        mark_step(&tx, "matviews").await?;
        tx.commit().await.map_err(err)
    }

    /// Set every sequence the target has to the source's value (read under the snapshot).
    async fn copy_sequences(&self, client: &mut tokio_postgres::Client) -> Result<usize> {
        let values = catalog::sequences(self.source.catalog()).await?;
        let err = |e| query_error(Side::Target, "setting sequences", e);
        let tx = client.transaction().await.map_err(err)?;
        let mut n = 0;
        for s in values {
            let name = format!("{}.{}", quote_ident(&s.schema), quote_ident(&s.name));
            let exists: bool = tx
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .await
                .map_err(err)?
                .get(0);
            if exists {
                tx.execute(
                    "SELECT pg_catalog.setval($1::text::regclass, $2, $3)",
                    &[&name, &s.last_value, &s.is_called],
                )
                .await
                .map_err(err)?;
                n += 1;
            }
        }
        mark_step(&tx, "sequences").await?;
        tx.commit().await.map_err(err)?;
        Ok(n)
    }

    /// Copy every large object (read under the snapshot) in one target transaction.
    async fn copy_large_objects(&self, client: &mut tokio_postgres::Client) -> Result<usize> {
        const CHUNK: i32 = 1 << 20;
        let oids = catalog::large_objects(self.source.catalog()).await?;
        let err = |e| query_error(Side::Target, "writing large objects", e);
        let tx = client.transaction().await.map_err(err)?;
        for &oid in &oids {
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_largeobject_metadata WHERE oid = $1)",
                    &[&oid],
                )
                .await
                .map_err(err)?
                .get(0);
            if exists {
                tx.execute("SELECT lo_unlink($1)", &[&oid])
                    .await
                    .map_err(err)?;
            }
            tx.execute("SELECT lo_create($1)", &[&oid])
                .await
                .map_err(err)?;
            let mut offset: i64 = 0;
            loop {
                let data: Vec<u8> = self
                    .source
                    .catalog()
                    .query_one("SELECT lo_get($1, $2, $3)", &[&oid, &offset, &CHUNK])
                    .await
                    .map_err(|e| query_error(Side::Source, "reading a large object", e))?
                    .get(0);
                if data.is_empty() {
                    break;
                }
                tx.execute("SELECT lo_put($1, $2, $3)", &[&oid, &offset, &data])
                    .await
                    .map_err(err)?;
                offset += data.len() as i64;
                if data.len() < CHUNK as usize {
                    break;
                }
            }
        }
        mark_step(&tx, "blobs").await?;
        tx.commit().await.map_err(err)?;
        Ok(oids.len())
    }

    /// Total bytes of the tables whose rows are copied.
    pub fn data_bytes(&self) -> u64 {
        self.work.iter().map(|w| w.table.bytes).sum()
    }
}

/// Roles that own objects of the source database or hold privileges on them (from
/// `pg_shdepend`) and do not exist on the target.
async fn missing_roles(
    pg: &PgSource,
    target: &PgTarget,
    target_exists: bool,
) -> Result<Vec<String>> {
    let rows = pg
        .catalog()
        .query(
            "SELECT DISTINCT r.rolname FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
             WHERE d.refclassid = 'pg_authid'::regclass AND d.deptype IN ('o', 'a')
               AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| query_error(Side::Source, "listing the roles objects belong to", e))?;
    let used: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let maintenance = if target_exists {
        target.clone()
    } else {
        target.with_dbname("postgres")
    };
    let client = maintenance.connect().await?;
    let present: HashSet<String> = client
        .query("SELECT rolname FROM pg_roles", &[])
        .await
        .map_err(|e| query_error(Side::Target, "listing roles", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(used.into_iter().filter(|r| !present.contains(r)).collect())
}

/// Every table the rules name exists in the source, or a configuration error listing them.
pub(crate) fn check_named(rules: &dyn TableRules, all: &[PgTable], location: &str) -> Result<()> {
    for (flag, schema, table) in rules.named() {
        if all.iter().any(|t| t.schema == schema && t.name == table) {
            continue;
        }
        let mut names: Vec<String> = all.iter().map(PgTable::display).collect();
        if names.len() > 50 {
            names.truncate(50);
            names.push("…".into());
        }
        return Err(Error::config(format!(
            "{flag}: table {} does not exist in source {}; its tables are: {}",
            display_name(&schema, &table),
            location,
            if names.is_empty() {
                "(none)".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    Ok(())
}

/// Check a row filter against the source before anything is written: the source plans a
/// query with it (`EXPLAIN`), so unknown columns and syntax errors surface now, naming the table.
async fn check_predicate(pg: &PgSource, table: &PgTable, predicate: &str) -> Result<()> {
    let sql = format!(
        "EXPLAIN SELECT 1 FROM ONLY {} WHERE {predicate}",
        table.sql_name()
    );
    pg.catalog()
        .batch_execute("SAVEPOINT seren_check")
        .await
        .ok();
    let outcome = pg.catalog().batch_execute(&sql).await;
    pg.catalog()
        .batch_execute("ROLLBACK TO SAVEPOINT seren_check")
        .await
        .ok();
    outcome.map_err(|e| {
        let e = query_error(
            Side::Source,
            &format!("the row filter of table {} ({predicate})", table.display()),
            e,
        );
        Error::new(ErrorKind::Config, Side::Source, e.to_string())
    })
}

/// The spec's guard: rows of a filtered table could be referenced from a table outside the
/// copy, whose rows `TRUNCATE … CASCADE` would wipe; refuse, naming both.
fn fk_guard(
    filtered: &[(String, String)],
    copied: &HashSet<(String, String)>,
    fks: &[catalog::ForeignKey],
) -> Result<()> {
    let problems: Vec<String> = fks
        .iter()
        .filter(|fk| filtered.contains(&fk.to) && !copied.contains(&fk.from))
        .map(|fk| {
            format!(
                "FK-related table {} will be truncated but is NOT being copied: it references \
                 the filtered table {} (constraint {})",
                display_name(&fk.from.0, &fk.from.1),
                display_name(&fk.to.0, &fk.to.1),
                fk.name
            )
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Conflict,
        Side::Source,
        format!(
            "{}; include those tables in the copy (with a matching --table-filter or \
             [[databases.<db>.table_filters]] entry) or drop the foreign key first",
            problems.join("; ")
        ),
    ))
}

/// Whether the target database exists (connecting to it is the only test every user can run).
async fn database_exists(target: &PgTarget) -> Result<bool> {
    match target.connect().await {
        Ok(_) => Ok(true),
        Err(e) if e.to_string().contains("does not exist") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Selected tables that already exist in the target: a conflict naming them and their rows.
async fn conflicts(target: &PgTarget, tables: &[PgTable]) -> Result<()> {
    let client = target.connect().await?;
    let mut found = Vec::new();
    for t in tables {
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.sql_name()])
            .await
            .map_err(|e| query_error(Side::Target, "checking existing tables", e))?
            .get(0);
        if !exists {
            continue;
        }
        let has_rows: bool = client
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", t.sql_name()),
                &[],
            )
            .await
            .map_err(|e| query_error(Side::Target, "checking existing tables", e))?
            .get(0);
        found.push(format!(
            "{} ({})",
            t.display(),
            if has_rows { "not empty" } else { "empty" }
        ));
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Conflict,
        Side::Target,
        format!(
            "target {} already has {}: {}; add --drop-existing to replace them, or choose \
             another target database",
            target.display(),
            if found.len() == 1 { "table" } else { "tables" },
            found.join(", ")
        ),
    ))
}

/// Create the target database (dropping it first when `drop`), with the source's encoding
/// and locale, from `template0`.
async fn recreate_database(
    target: &PgTarget,
    source: &tokio_postgres::Client,
    drop: bool,
) -> Result<()> {
    let db = target.dbname();
    let row = source
        .query_one(
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database
             WHERE datname = current_database()",
            &[],
        )
        .await
        .map_err(|e| query_error(Side::Source, "reading the database encoding", e))?;
    let (encoding, collate, ctype): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let maintenance = if db == "postgres" {
        "template1"
    } else {
        "postgres"
    };
    let admin = target.with_dbname(maintenance).connect().await?;
    let err = |what: &str, e| query_error(Side::Target, what, e);
    if drop {
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(db)
            ))
            .await
            .map_err(|e| err(&format!("dropping database {db} (--drop-existing)"), e))?;
    }
    let with_locale = format!(
        "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
        quote_ident(db),
        quote_literal(&encoding),
        quote_literal(&collate),
        quote_literal(&ctype)
    );
    if admin.batch_execute(&with_locale).await.is_err() {
        tracing::warn!(
            database = db,
            "the source's locale is not available on the target; using the target's default"
        );
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING {}",
                quote_ident(db),
                quote_literal(&encoding)
            ))
            .await
            .map_err(|e| err(&format!("creating database {db}"), e))?;
    }
    Ok(())
}

/// Drop the selected tables that exist in the target (`--drop-existing` with a partial
/// selection), all in one statement so foreign keys among them do not block it. Objects
/// outside the copy that depend on them (views, other tables' foreign keys) make this fail,
/// naming them, rather than being dropped silently.
async fn drop_objects(target: &PgTarget, tables: &[PgTable]) -> Result<()> {
    let client = target.connect().await?;
    let mut names = Vec::new();
    for t in tables.iter().filter(|t| t.partition_root.is_none()) {
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.sql_name()])
            .await
            .map_err(|e| query_error(Side::Target, "checking existing tables", e))?
            .get(0);
        if exists {
            names.push(t.sql_name());
        }
    }
    let mut sql = format!("DROP SCHEMA IF EXISTS {STATE_SCHEMA} CASCADE;");
    if !names.is_empty() {
        sql.push_str(&format!(" DROP TABLE {}", names.join(", ")));
    }
    client.batch_execute(&sql).await.map_err(|e| {
        query_error(
            Side::Target,
            "dropping existing tables (--drop-existing)",
            e,
        )
    })
}

/// Connections `server` can still accept for this tool: `max_connections` minus the reserved
/// superuser slots and the connections already open.
pub async fn free_connections(server: &PgTarget) -> Result<usize> {
    let client = server.connect().await?;
    let row = client
        .query_one(
            "SELECT current_setting('max_connections')::int
                  - current_setting('superuser_reserved_connections')::int
                  - (SELECT count(*)::int FROM pg_stat_activity)",
            &[],
        )
        .await
        .map_err(|e| query_error(server.side(), "counting free connections", e))?;
    Ok(row.get::<_, i32>(0).max(0) as usize)
}

/// Whether `a` and `b` reach the same database of the same server, however they are spelt
/// (`localhost` vs `127.0.0.1`, different users): same database name and OID and the same
/// postmaster start time (microseconds), all readable without privileges. A side that cannot
/// be reached yet (e.g. a target database init will create) is not the same database.
pub async fn same_database(a: &PgTarget, b: &PgTarget) -> Result<bool> {
    const WHO: &str = "SELECT current_database() || '/' || d.oid::text || '/' \
                       || pg_postmaster_start_time()::text \
                       FROM pg_database d WHERE d.datname = current_database()";
    let mut ids = Vec::new();
    for server in [a, b] {
        let Ok(client) = server.connect().await else {
            return Ok(false);
        };
        let row = client
            .query_one(WHO, &[])
            .await
            .map_err(|e| query_error(server.side(), "identifying the database", e))?;
        ids.push(row.get::<_, String>(0));
    }
    Ok(ids[0] == ids[1])
}

/// Names of the databases on `server` that can be copied (templates excluded).
pub async fn databases(server: &PgTarget) -> Result<Vec<String>> {
    let client = server.connect().await?;
    let rows = client
        .query(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| query_error(server.side(), "listing databases", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
