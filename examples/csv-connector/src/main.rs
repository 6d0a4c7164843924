//! `seren-csv`: the seren-replicator command line with every built-in connector plus the CSV
//! connector of this crate, e.g. `seren-csv init --source ./exports/ --target postgresql://…`.

fn main() {
    std::process::exit(seren_replicator::run_with(|registry| {
        registry.register(csv_connector::CsvFactory);
    }));
}
