//! The `sim` binary: parse the command line, call the library, map errors to exit codes.

use clap::Parser;

fn main() {
    let cli = pubsub_sim::cli::Cli::parse();
    if let Err(e) = pubsub_sim::cli::main(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
