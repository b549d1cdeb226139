//! The `collector` binary: runs [`collector::run`], prints one line when
//! there is something to say, and exits with its code.
//!
//! The static (musl) build keeps musl's own allocator. mimalloc was faster
//! for ingest's many small allocations, but under a flood of datagrams it
//! held on to ~300 MB where musl's stays within the 50 MB that
//! `tests/hostile.rs` allows (measured with the static build in place of
//! the test's collector); a collector must not grow under attack.

use std::io::Write;
use std::process::ExitCode;

use collector::Outcome;

fn main() -> ExitCode {
    match collector::run(std::env::args_os().skip(1)) {
        Ok(Outcome::Help(text)) => out(&mut std::io::stdout(), text),
        Ok(Outcome::Version(line)) => out(&mut std::io::stdout(), &format!("{line}\n")),
        Ok(Outcome::AlreadyRunning) => {}
        Ok(Outcome::Shutdown(line)) => out(&mut std::io::stderr(), &format!("collector: {line}\n")),
        Err(e) => {
            out(&mut std::io::stderr(), &format!("collector: {e}\n"));
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1));
        }
    }
    ExitCode::SUCCESS
}

/// Writes `text`, ignoring a failure: a dead pipe or a full disk must not
/// turn a clean exit into a panic (and its status 101).
fn out(w: &mut impl Write, text: &str) {
    let _ = w.write_all(text.as_bytes()).and_then(|()| w.flush());
}
