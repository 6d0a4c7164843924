//! Command-line arguments (clap derive). Every flag can also come from a `SEREN_*` variable.

use clap::{ArgAction, Args, Parser, Subcommand};
use pipeline::{Mode, OnTypeMismatch};
use std::path::PathBuf;

/// Move whole databases into PostgreSQL, fast and without losing a byte.
#[derive(Debug, Parser)]
#[command(name = "seren-replicator", version, about)]
pub struct Cli {
    /// More log output (-v: info, -vv: debug).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, env = "SEREN_QUIET")]
    pub quiet: bool,
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long, global = true, env = "SEREN_JSON")]
    pub json: bool,
    /// Never ask questions, even on a terminal (as when stdin is not one).
    #[arg(long, global = true, env = "SEREN_NO_INTERACTIVE")]
    pub no_interactive: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy a source database into PostgreSQL (schema and data).
    Init(InitArgs),
    /// Check that source and target are reachable and the copy can run.
    Validate(ValidateArgs),
    /// Compare source and target tables: row counts and content digests.
    Verify(VerifyArgs),
    /// Migrate a generated sample database into a throwaway PostgreSQL, verify it, clean up.
    Demo(DemoArgs),
    /// Continuous sync set up by init: check it, `--cutover` to the target, or `--stop` it.
    Sync(SyncArgs),
    /// Continuous sync status: subscriptions, slots, lag and a verdict with the fix.
    Status(StatusArgs),
    /// List the built-in connectors and the source forms they accept.
    Connectors,
    /// Write every selected source table to Parquet files: `<target>/<table>/part-00000.parquet` ….
    Export(ExportArgs),
    /// Run the job server: an HTTP API that runs `init` jobs as child processes.
    Serve(ServeArgs),
    /// Jobs on a job server: `status`, `logs`, `cancel`, `list`.
    Jobs(JobsArgs),
    /// Work on a job submitted with `--workers`: any number of workers, on any machines,
    /// share its copy through the job store and the target.
    Worker(WorkerArgs),
}

/// `worker` arguments.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The job to work on (its id, printed by `init --remote … --workers`).
    #[arg(long, env = "SEREN_JOB")]
    pub job: String,
    /// The job server's job store, a PostgreSQL database (`postgresql://…`) every worker
    /// reaches.
    #[arg(long, env = "SEREN_STATE")]
    pub state: String,
    /// The key the job server seals credentials with, as for `serve` (else `SEREN_JOB_KEY`).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// This worker's name in the job's log (default: host name and process id).
    #[arg(long, env = "SEREN_WORKER_NAME")]
    pub name: Option<String>,
    /// Partitions this worker copies at once (default: the job's `jobs`, else the cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
}

/// `serve` arguments.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free port and prints it).
    #[arg(long, default_value = "127.0.0.1:8080", env = "SEREN_LISTEN")]
    pub listen: String,
    /// Job store: a SQLite file, created if missing (`jobs.sqlite`), or a PostgreSQL database
    /// (`postgresql://…`; tables in schema `seren_jobs`).
    #[arg(long, env = "SEREN_STATE")]
    pub state: String,
    /// Bearer tokens clients must present, one per line (blank lines and `#` comments ignored).
    #[arg(long, env = "SEREN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Accept requests without a token (only on a loopback address).
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// The 32-byte key that encrypts job credentials at rest: a file holding 32 raw bytes, or
    /// 64 hex digits, or base64 (else the `SEREN_JOB_KEY` variable, hex or base64).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Stop a job that runs longer than this (`30m`, `8h`, `2d`, or seconds), unless the job
    /// asks for its own timeout.
    #[arg(long, default_value = "8h", env = "SEREN_JOB_TIMEOUT")]
    pub job_timeout: String,
    /// After SIGINT (timeout or cancel), wait this long before SIGKILL.
    #[arg(long, default_value = "30s", env = "SEREN_KILL_GRACE")]
    pub kill_grace: String,
}

/// Where the job server is and how to authenticate: shared by `init --remote` and `jobs`.
#[derive(Debug, Clone, Default, Args)]
pub struct RemoteArgs {
    /// Run on this job server instead of here (`http://host:8080`).
    #[arg(long, global = true, env = "SEREN_REMOTE_API")]
    pub remote: Option<String>,
    /// Read the job server's bearer token from this file (its first line that is not blank or
    /// a `#` comment); else `SEREN_REMOTE_TOKEN`.
    #[arg(long, global = true, env = "SEREN_REMOTE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// `jobs` arguments.
#[derive(Debug, Clone, Args)]
pub struct JobsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: JobsCommand,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub remote: RemoteArgs,
}

/// `jobs` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum JobsCommand {
    /// One job: status, exit code, progress per database and table.
    Status {
        /// Job id.
        id: String,
    },
    /// A job's output (passwords removed).
    Logs {
        /// Job id.
        id: String,
    },
    /// Stop a job (SIGINT, then SIGKILL after the server's grace period).
    Cancel {
        /// Job id.
        id: String,
    },
    /// Every job, newest first.
    List,
}

/// `export` arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Source, any supported one: a file, a directory or glob of Parquet files, or a database URL.
    #[arg(long, env = "SEREN_SOURCE")]
    pub source: String,
    /// Read the source password from this file (first line) instead of the URL (PostgreSQL,
    /// MySQL/MariaDB and MongoDB sources).
    #[arg(long, env = "SEREN_SOURCE_PASSWORD_FILE")]
    pub source_password_file: Option<PathBuf>,
    /// Directory to write into (created if missing); one subdirectory per table.
    #[arg(long, env = "SEREN_TARGET")]
    pub target: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub selection: Selection,
    /// Replace tables whose output directory already holds files.
    #[arg(long, env = "SEREN_OVERWRITE")]
    pub overwrite: bool,
    /// Partitions written at once (default: CPU cores).
    #[arg(short, long, env = "SEREN_JOBS", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// Close a Parquet row group once its encoded size reaches this many bytes.
    #[arg(long, env = "SEREN_ROW_GROUP_BYTES", default_value_t = seren_parquet::DEFAULT_ROW_GROUP_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub row_group_bytes: u64,
}

/// `status` arguments.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Source PostgreSQL (where the publication and the replication slot live):
    /// `postgresql://user:pass@host:5432/db` or `host=… dbname=…`.
    #[arg(long, env = "SEREN_SOURCE")]
    pub source: String,
    /// Read the source password from this file (first line) instead of the URL (PostgreSQL,
    /// MySQL/MariaDB and MongoDB sources).
    #[arg(long, env = "SEREN_SOURCE_PASSWORD_FILE")]
    pub source_password_file: Option<PathBuf>,
    /// Target PostgreSQL (where the subscription lives); its database is the one checked.
    /// PGPASSWORD and ~/.pgpass work as in psql.
    #[arg(long, env = "SEREN_TARGET")]
    pub target: String,
    /// Read the target password from this file (first line) instead of the URL.
    #[arg(long, env = "SEREN_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// Refresh every SECONDS (default 2) until Ctrl-C.
    #[arg(
        long,
        value_name = "SECONDS",
        num_args = 0..=1,
        default_missing_value = "2",
        value_parser = clap::value_parser!(u64).range(1..),
        env = "SEREN_WATCH"
    )]
    pub watch: Option<u64>,
    /// Seconds behind the source above which a subscription counts as lagging.
    #[arg(long, value_name = "SECONDS", default_value_t = seren_postgres::status::DEFAULT_MAX_LAG_SECONDS)]
    pub max_lag: f64,
    /// Other sources: the target schema init copied into (needed only when the source was
    /// copied into several).
    #[arg(long, env = "SEREN_TARGET_SCHEMA")]
    pub target_schema: Option<String>,
}

/// `validate` arguments.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Source, target, selection and layout, as for `init`.
    #[command(flatten)]
    pub check: CheckArgs,
    /// Skip the checks continuous sync needs (as `init --no-sync`).
    #[arg(long, env = "SEREN_NO_SYNC")]
    pub no_sync: bool,
    /// Do not ask which tables to check (on a terminal without filters it asks).
    #[arg(short = 'y', long, env = "SEREN_YES")]
    pub yes: bool,
    /// Partitions `init` would copy at once (default: CPU cores): the target needs this many
    /// free connections, plus one.
    #[arg(long, short = 'j', env = "SEREN_JOBS", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
}

/// `verify` arguments.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Source, target, selection and layout, as for `init`.
    #[command(flatten)]
    pub check: CheckArgs,
    /// PostgreSQL sources: tables compared at once (default: CPU cores; one connection per
    /// side each).
    #[arg(long, short = 'j', env = "SEREN_JOBS", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// PostgreSQL sources: differing rows named per table.
    #[arg(long, default_value_t = 20, env = "SEREN_MAX_DIFFS")]
    pub max_diffs: usize,
    /// During continuous sync: the subscription's name, if init was given one (verify waits
    /// for the target to catch up before comparing).
    #[arg(long, env = "SEREN_SUBSCRIPTION")]
    pub subscription: Option<String>,
}

/// `sync` arguments.
#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub endpoints: Endpoints,
    /// Wait until the target has applied every write, copy sequence values, then remove the
    /// subscription, slot and publication.
    #[arg(long, conflicts_with = "stop")]
    pub cutover: bool,
    /// Remove the subscription, slot and publication without cutting over.
    #[arg(long)]
    pub stop: bool,
    /// `--cutover`: add this to every sequence value copied, as a safety margin.
    #[arg(long, default_value_t = 0, env = "SEREN_SEQUENCE_MARGIN")]
    pub sequence_margin: i64,
    /// `--cutover`: seconds to wait for the target to catch up.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Publication name, if init was given one.
    #[arg(long, env = "SEREN_PUBLICATION")]
    pub publication: Option<String>,
    /// Subscription (and slot) name, if init was given one.
    #[arg(long, env = "SEREN_SUBSCRIPTION")]
    pub subscription: Option<String>,
    /// Other sources: the target schema init copied into (needed only when the source was
    /// copied into several).
    #[arg(long, env = "SEREN_TARGET_SCHEMA")]
    pub target_schema: Option<String>,
    /// Other sources, periodic refresh: time between refreshes (`30s`, `10m`, `2h`, `1d`).
    #[arg(long, default_value = "24h", env = "SEREN_INTERVAL")]
    pub interval: String,
    /// Other sources: one pass (one refresh, or change capture until caught up), then exit.
    #[arg(long, env = "SEREN_ONCE")]
    pub once: bool,
    /// Other sources, periodic refresh: partitions read at once (default: CPU cores).
    #[arg(long, short = 'j', env = "SEREN_JOBS", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
}

/// Where data comes from and goes to.
#[derive(Debug, Clone, Args)]
pub struct Endpoints {
    /// Source: a SQLite file (`./app.db`, `sqlite:///path/app.db`).
    #[arg(long, env = "SEREN_SOURCE")]
    pub source: String,
    /// Read the source password from this file (first line) instead of the URL (PostgreSQL,
    /// MySQL/MariaDB and MongoDB sources).
    #[arg(long, env = "SEREN_SOURCE_PASSWORD_FILE")]
    pub source_password_file: Option<PathBuf>,
    /// Target PostgreSQL: `postgresql://user:pass@host:5432/db` or `host=… dbname=…`.
    /// PGPASSWORD and ~/.pgpass work as in psql.
    #[arg(long, env = "SEREN_TARGET")]
    pub target: String,
    /// Read the target password from this file (first line) instead of the URL.
    #[arg(long, env = "SEREN_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
}

/// Which tables and rows.
#[derive(Debug, Clone, Default, Args)]
pub struct Selection {
    /// Only these tables (comma-separated; repeatable). PostgreSQL: `schema.table`, parts
    /// double-quoted as in SQL when needed (`public."My Table"`).
    #[arg(long, env = "SEREN_INCLUDE_TABLES")]
    pub include_tables: Vec<String>,
    /// Skip these tables (comma-separated; repeatable).
    #[arg(long, env = "SEREN_EXCLUDE_TABLES")]
    pub exclude_tables: Vec<String>,
    /// Copy only matching rows: `table:SQL predicate` in the source's SQL (repeatable).
    #[arg(long = "table-filter", value_name = "TABLE:PREDICATE")]
    pub table_filters: Vec<String>,
    /// PostgreSQL sources: copy these tables' schema but not their rows (comma-separated;
    /// repeatable).
    #[arg(long, env = "SEREN_SCHEMA_ONLY_TABLES")]
    pub schema_only_tables: Vec<String>,
    /// PostgreSQL sources: copy only recent rows, `schema.table:column:90 days` (repeatable).
    #[arg(long = "time-filter", value_name = "TABLE:COLUMN:SPAN")]
    pub time_filters: Vec<String>,
    /// A TOML file: PostgreSQL sources' filters (`[databases.<db>]` sections; flags win),
    /// MongoDB sources' flattened fields (`[collections.<name>] columns = {…}`).
    #[arg(long, env = "SEREN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Copy these databases: PostgreSQL sources each to the same-named target database,
    /// MySQL/MariaDB sources each into a target schema named after it.
    #[arg(long, value_delimiter = ',', env = "SEREN_INCLUDE_DATABASES")]
    pub include_databases: Vec<String>,
    /// PostgreSQL sources: skip these databases.
    #[arg(long, value_delimiter = ',', env = "SEREN_EXCLUDE_DATABASES")]
    pub exclude_databases: Vec<String>,
    /// PostgreSQL sources: copy every database of the source server (templates excluded).
    #[arg(long)]
    pub all_databases: bool,
}

impl Selection {
    /// Whether no selection flag was given: everything the source holds is selected.
    pub fn is_empty(&self) -> bool {
        self.as_flags().is_empty()
    }

    /// The selection as command-line flags, each value shell-quoted: what to type to make the
    /// same selection without questions.
    pub fn as_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        let lists = [
            ("--include-databases", &self.include_databases),
            ("--exclude-databases", &self.exclude_databases),
            ("--include-tables", &self.include_tables),
            ("--exclude-tables", &self.exclude_tables),
            ("--schema-only-tables", &self.schema_only_tables),
            ("--table-filter", &self.table_filters),
            ("--time-filter", &self.time_filters),
        ];
        for (flag, values) in lists {
            for v in values {
                flags.push(format!("{flag} {}", shell_quote(v)));
            }
        }
        if let Some(config) = &self.config {
            flags.push(format!(
                "--config {}",
                shell_quote(&config.display().to_string())
            ));
        }
        if self.all_databases {
            flags.push("--all-databases".into());
        }
        flags
    }

    /// The flags that only PostgreSQL sources accept, by name, when given.
    pub fn postgres_only_flags(&self) -> Vec<&'static str> {
        let mut used = Vec::new();
        for (set, flag) in [
            (!self.schema_only_tables.is_empty(), "--schema-only-tables"),
            (!self.time_filters.is_empty(), "--time-filter"),
            (!self.exclude_databases.is_empty(), "--exclude-databases"),
            (self.all_databases, "--all-databases"),
        ] {
            if set {
                used.push(flag);
            }
        }
        used
    }
}

/// `text` as one POSIX shell word: bare when only safe characters, else single-quoted.
fn shell_quote(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/@=+".contains(c));
    if safe {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// How tables are laid out in the target.
#[derive(Debug, Clone, Args)]
pub struct Layout {
    /// `jsonb` (id, data JSONB, _source_type, _migrated_at) or `native` typed columns.
    #[arg(long, default_value = "jsonb", env = "SEREN_MODE")]
    pub mode: Mode,
    /// Target schema, created if missing.
    #[arg(long, default_value = "public", env = "SEREN_TARGET_SCHEMA")]
    pub target_schema: String,
    /// Native mode, values that do not fit the declared type: `fail` or `text` (widen column).
    #[arg(long, default_value = "fail", env = "SEREN_ON_TYPE_MISMATCH")]
    pub on_type_mismatch: OnTypeMismatch,
    /// Native mode, MySQL zero dates (`0000-00-00`): `null` (written as NULL, counted in a
    /// warning) or `error` (stop, naming the table, column and row).
    #[arg(long, default_value = "null", env = "SEREN_ZERO_DATES")]
    pub zero_dates: pipeline::ZeroDates,
    /// MongoDB sources: also write these top-level fields as typed columns beside `data`
    /// (repeatable; also `[collections.NAME] columns = {…}` in --config). Types: text, int,
    /// bigint, double, numeric, boolean, timestamptz, jsonb.
    #[arg(long, value_name = "COLLECTION:FIELD=TYPE,…")]
    pub flatten: Vec<String>,
}

/// `init` arguments.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Source, target, selection and layout, as for `validate` and `verify`.
    #[command(flatten)]
    pub tables: CheckArgs,
    /// JSONB mode's GIN index on `data`: `full` (jsonb_ops), `path` (jsonb_path_ops) or `none`.
    #[arg(long, default_value = "full", env = "SEREN_GIN_INDEX")]
    pub gin_index: seren_postgres::GinIndex,
    /// Replace tables that already exist in the target (each swapped in once fully copied).
    #[arg(long, env = "SEREN_DROP_EXISTING")]
    pub drop_existing: bool,
    /// Partitions copied at once (default: the number of CPU cores).
    #[arg(long, short = 'j', env = "SEREN_JOBS")]
    pub jobs: Option<usize>,
    /// Split tables into partitions of about this many rows (default 250,000; given, it also
    /// splits MongoDB collections whose `_id` range reads the server plans as scans).
    #[arg(long, env = "SEREN_PARTITION_ROWS")]
    pub partition_rows: Option<u64>,
    /// Show the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask anything: no table selection, no confirmation.
    #[arg(short = 'y', long, env = "SEREN_YES")]
    pub yes: bool,
    /// Run on this machine even when `SEREN_REMOTE_API` is set.
    #[arg(long)]
    pub local: bool,
    /// With `--remote`: submit the job for `seren-replicator worker --job ID` processes to
    /// share, instead of the server running it (PostgreSQL source, with `--no-sync`).
    #[arg(long)]
    pub workers: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub remote: RemoteArgs,
    /// With `--remote`: stop the job after this long (`12h`, or seconds; the server's default
    /// otherwise).
    #[arg(long, env = "SEREN_JOB_TIMEOUT")]
    pub job_timeout: Option<String>,
    /// Print a JSON progress line on stderr every second (what the job server reads).
    #[arg(long, env = "SEREN_JSON_PROGRESS")]
    pub json_progress: bool,
    /// PostgreSQL → PostgreSQL settings.
    #[command(flatten)]
    pub postgres: PgInitArgs,
}

/// `init` flags for PostgreSQL sources.
#[derive(Debug, Clone, Default, Args)]
pub struct PgInitArgs {
    /// Stop after the snapshot copy instead of continuing into continuous sync.
    #[arg(long, env = "SEREN_NO_SYNC")]
    pub no_sync: bool,
    /// Continuous sync: set `REPLICA IDENTITY FULL` on source tables without a primary key,
    /// so their UPDATEs and DELETEs replicate.
    #[arg(long, env = "SEREN_SET_REPLICA_IDENTITY_FULL")]
    pub set_replica_identity_full: bool,
    /// Continuous sync: publication name on the source (default `seren_replication_pub`;
    /// `_<db>` is appended with several databases).
    #[arg(long, env = "SEREN_PUBLICATION")]
    pub publication: Option<String>,
    /// Continuous sync: subscription name on the target, also its slot's name on the source
    /// (default `seren_replication_sub`; `_<db>` is appended with several databases).
    #[arg(long, env = "SEREN_SUBSCRIPTION")]
    pub subscription: Option<String>,
    /// Index and constraint builds at once (default: the number of CPU cores).
    #[arg(long, env = "SEREN_INDEX_JOBS")]
    pub index_jobs: Option<usize>,
    /// Split tables bigger than this into block ranges copied in parallel, e.g. `2GB`; `0`
    /// never splits; `auto` (the default) splits at 1 GB on machines with 4+ cores and never
    /// below that.
    #[arg(long, env = "SEREN_SPLIT_TABLES_LARGER_THAN")]
    pub split_tables_larger_than: Option<String>,
    /// Start over instead of resuming an interrupted run (drops what it copied).
    #[arg(long, env = "SEREN_NO_RESUME")]
    pub no_resume: bool,
    /// Keep the resume state (schema `seren_replicator` in the target) after success.
    #[arg(long, env = "SEREN_KEEP_STATE")]
    pub keep_state: bool,
    /// Do not restore object owners (objects belong to the target user).
    #[arg(long, env = "SEREN_NO_OWNER")]
    pub no_owner: bool,
    /// Do not restore privileges (GRANT/REVOKE).
    #[arg(long, env = "SEREN_NO_PRIVILEGES")]
    pub no_privileges: bool,
    /// Copy role definitions first (without passwords).
    #[arg(long, env = "SEREN_ROLES")]
    pub roles: bool,
    /// Do not copy large objects.
    #[arg(long, env = "SEREN_NO_BLOBS")]
    pub no_blobs: bool,
}

impl PgInitArgs {
    /// The flags given that only PostgreSQL sources act on, by name. `--no-sync` and
    /// `--keep-state` are left out: every source accepts them.
    pub fn postgres_only_flags(&self) -> Vec<&'static str> {
        [
            (
                self.set_replica_identity_full,
                "--set-replica-identity-full",
            ),
            (self.publication.is_some(), "--publication"),
            (self.subscription.is_some(), "--subscription"),
            (self.index_jobs.is_some(), "--index-jobs"),
            (
                self.split_tables_larger_than.is_some(),
                "--split-tables-larger-than",
            ),
            (self.no_resume, "--no-resume"),
            (self.no_owner, "--no-owner"),
            (self.no_privileges, "--no-privileges"),
            (self.roles, "--roles"),
            (self.no_blobs, "--no-blobs"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }
}

/// Source, target, table selection and layout: what `init` copies, `validate` checks and
/// `verify` compares.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub endpoints: Endpoints,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub selection: Selection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub layout: Layout,
}

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this PostgreSQL database instead of starting a throwaway one.
    #[arg(long, env = "SEREN_TARGET")]
    pub target: Option<String>,
    /// Rows in the biggest sample table.
    #[arg(long, default_value_t = 200_000)]
    pub rows: u64,
    /// Storage mode for the demo.
    #[arg(long, default_value = "jsonb")]
    pub mode: Mode,
}
