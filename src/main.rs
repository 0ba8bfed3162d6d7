//! `cauce`: the command-line entry point. Each subcommand lives in `src/cli/`.

mod cli;

/// mimalloc rather than glibc's malloc: `cauce serve` allocates on many threads (the runtime's
/// workers, the blocking pool that runs SQLite), and glibc keeps a 64 MiB arena per thread
/// that it seldom gives back. Under a 10-minute soak its resident memory tripled. mimalloc also
/// takes the C code's `malloc` (its `override` feature): with Rust's allocations alone on
/// mimalloc, SQLite's stayed in glibc's arenas, which held 1.0 GB for 0.3 GB in use after a
/// 10-minute soak at twice the accept target (see the README's soak figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    cli::run()
}
