//! `cauce`: the command-line entry point. Each subcommand lives in `src/cli/`.

mod cli;

fn main() -> anyhow::Result<()> {
    cauce_analytics::configure_polars();
    cli::run()
}
