use clap::Parser;
use seren_replicator::cli::Cli;

fn main() {
    let cli = Cli::parse();
    std::process::exit(seren_replicator::commands::main(cli));
}
