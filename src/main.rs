//! `cauce`: the command-line entry point. Each subcommand lives in `src/cli/`.

mod cli;

fn main() -> anyhow::Result<()> {
    cli::run()
}
