//! The `collector` binary: runs [`collector::run`], prints one line when
//! there is something to say, and exits with its code.
//!
//! The static (musl) build uses mimalloc as its allocator: musl's own is slow
//! for the many small allocations of ingest (docs/benchmarks.md).

use std::process::ExitCode;

use collector::Outcome;

#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match collector::run(std::env::args_os().skip(1)) {
        Ok(Outcome::Help(text)) => print!("{text}"),
        Ok(Outcome::Version(line)) => println!("{line}"),
        Ok(Outcome::AlreadyRunning) => {}
        Ok(Outcome::Shutdown(line)) => eprintln!("collector: {line}"),
        Err(e) => {
            eprintln!("collector: {e}");
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1));
        }
    }
    ExitCode::SUCCESS
}
