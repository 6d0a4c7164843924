//! The `seren-replicator` command line: argument parsing, the built-in connector registry and
//! one module per command. The data path itself lives in the `pipeline` crate and connectors.

pub mod cli;
pub mod commands;
pub mod connectors;
pub mod databases;
pub mod flatten;
pub mod interactive;
pub mod jobs;
pub mod rules;
pub mod sample;
pub mod session;
pub mod source_password;
pub mod throwaway;
pub mod view;

/// Run the command line exactly as the `seren-replicator` binary does, with the built-in
/// connectors plus those `add` registers (asked first, so they win over a built-in connector
/// that accepts the same location): the whole `main` of a custom binary. Returns the process
/// exit code.
///
/// ```no_run
/// // The whole body of a custom binary's `main`:
/// std::process::exit(seren_replicator::run_with(|registry| {
///     // registry.register(my_connector::MyFactory);
///     let _ = registry;
/// }));
/// ```
pub fn run_with(add: impl Fn(&mut pipeline::Registry) + Send + Sync + 'static) -> i32 {
    connectors::add_connectors(add);
    commands::main(<cli::Cli as clap::Parser>::parse())
}
