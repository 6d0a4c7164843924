//! One module per command; `main` runs the chosen one and turns its error into an exit code.

mod demo;
mod export;
mod init;
mod init_pg;
mod pg_scope;
mod remote;
mod serve;
mod status;
mod status_source;
mod sync;
mod sync_source;
mod validate;
mod verify;
mod verify_pg;
mod worker;

use crate::cli::{Cli, Command};
use pipeline::ErrorKind;

/// Exit code for invalid arguments or configuration.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the target already holds what the command would overwrite.
pub const EXIT_CONFLICT: i32 = 3;
/// Exit code after Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_CANCELLED: i32 = 130;
/// Exit code when `verify` or `validate` find a difference or a failed check.
pub const EXIT_CHECK_FAILED: i32 = 5;

/// Run the command line; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let json = cli.json;
    let ui = cli.ui();
    let mut command = cli.command;
    if let Err(e) = crate::source_password::resolve(&mut command) {
        return report(&e, json);
    }
    let result = runtime.block_on(async move {
        match command {
            Command::Init(args) => init::run(args, &ui).await,
            Command::Validate(args) => validate::run(args, &ui).await,
            Command::Verify(args) => verify::run(args, &ui).await,
            Command::Demo(args) => demo::run(args, &ui).await,
            Command::Connectors => {
                for f in crate::connectors::registry().factories() {
                    println!("{:<10} {}", f.name(), f.forms().join(", "));
                }
                Ok(0)
            }
            Command::Status(args) => status::run(args, &ui).await,
            Command::Export(args) => export::run(args, &ui).await,
            Command::Sync(args) => sync::run(args, &ui).await,
            Command::Serve(args) => serve::run(args, &ui).await,
            Command::Jobs(args) => remote::run(args, &ui).await,
            Command::Worker(args) => worker::run(args, &ui).await,
        }
    });
    runtime.block_on(pipeline::cleanup::finish(std::time::Duration::from_secs(5)));
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(e) => report(&e, json),
    }
}

/// A layout enum's flag value (its serde name is the flag value), e.g. `jsonb` for
/// `Mode::Jsonb`.
fn flag_value<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Print an error (never a panic or debug dump) and pick the exit code.
fn report(e: &anyhow::Error, json: bool) -> i32 {
    let kind = e.downcast_ref::<pipeline::Error>().map(|p| p.kind());
    let code = match kind {
        Some(ErrorKind::Config) => EXIT_USAGE,
        Some(ErrorKind::Conflict) => EXIT_CONFLICT,
        Some(ErrorKind::Cancelled) => EXIT_CANCELLED,
        _ => 1,
    };
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !message.contains(&c) {
            message.push_str(": ");
            message.push_str(&c);
        }
    }
    if json {
        let v = serde_json::json!({"ok": false, "error": {"kind": kind, "message": message}});
        println!("{v}");
    } else {
        eprintln!("error: {message}");
    }
    code
}

/// Output settings every command receives.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// JSON on stdout instead of text.
    pub json: bool,
    /// Only errors.
    pub quiet: bool,
    /// A person is at a terminal and questions are allowed (stdin and stdout are terminals,
    /// no `--json`, no `--no-interactive`).
    pub interactive: bool,
}

impl Cli {
    fn ui(&self) -> Ui {
        use std::io::IsTerminal;
        Ui {
            json: self.json,
            quiet: self.quiet,
            interactive: !self.json
                && !self.no_interactive
                && std::io::stdin().is_terminal()
                && std::io::stdout().is_terminal(),
        }
    }
}

fn init_tracing(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    // tokio-postgres logs statements at debug level, and CREATE SUBSCRIPTION carries the
    // source's password: only its warnings are shown (its notices are noise).
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEREN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
        .add_directive("tokio_postgres=warn".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if cli.json {
        builder.json().init();
    } else {
        builder.with_target(false).init();
    }
}
