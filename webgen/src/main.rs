//! The `webgen` binary: everything happens in [`webgen::run`], which prints
//! at most one `webgen: ...` error line; the exit codes are in `--help`.
//!
//! The static (musl) build uses mimalloc as its allocator: with musl's own,
//! webgen spends much of its time allocating (docs/benchmarks.md).

#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(webgen::run(std::env::args_os().skip(1)));
}
