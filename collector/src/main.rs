//! The `collector` binary: runs [`collector::run`], prints one line when
//! there is something to say, and exits with its code.
//!
//! The glibc build uses mimalloc, bounded: ingest makes many small
//! allocations (a string per field of every tunnel of every datagram), and
//! glibc's `malloc` and `free` were a fifth of its main thread. As it comes,
//! mimalloc asks for transparent huge pages for its memory, which under
//! `tests/hostile.rs`'s flood grew the collector from ~18 MB to ~300 MB
//! (the test allows 50 MB more): memory freed inside a 2 MB huge page is
//! never given back. [`bound_allocator`] turns huge pages off for the
//! process and has freed memory given back at once; the flood then leaves
//! it ~36 MB larger (glibc's: ~11 MB). A collector must not grow under
//! attack.
//!
//! The static (musl) build keeps musl's own allocator: with it, the same
//! test passes too (its binary in place of the test's collector), and it is
//! the build for hosts with an old C library, not for the busiest ones.

use std::io::Write;
use std::process::ExitCode;

use collector::Outcome;

#[cfg(target_env = "gnu")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's own settings (`mi_option_t`, `include/mimalloc.h` of the
/// mimalloc 3 that `libmimalloc-sys` 0.1.49 builds; the `mimalloc` crate
/// does not name these). The test below checks their defaults, so a
/// renumbered list fails it rather than setting the wrong option.
#[cfg(target_env = "gnu")]
mod mi {
    /// Milliseconds before freed memory is given back (default 1000).
    pub(crate) const PURGE_DELAY: libc::c_int = 15;
    /// Whether to ask for transparent huge pages (default 1).
    pub(crate) const ALLOW_THP: libc::c_int = 43;

    unsafe extern "C" {
        pub(crate) fn mi_option_set(option: libc::c_int, value: libc::c_long);
        #[cfg(test)]
        pub(crate) fn mi_option_get(option: libc::c_int) -> libc::c_long;
    }
}

/// Bounds what mimalloc keeps (see the module doc): no transparent huge
/// pages for this process, and freed memory given back at once. mimalloc's
/// own switch alone is not enough: the memory it mapped before `main` keeps
/// its huge pages (the flood test then still grows ~215 MB), hence the
/// process-wide `prctl`. The commands the collector starts (`--notify`,
/// `--on-collect`) inherit it; they run without huge pages too.
#[cfg(target_env = "gnu")]
fn bound_allocator() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers; the two
    // options are plain settings that mimalloc reads as it goes.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        mi::mi_option_set(mi::ALLOW_THP, 0);
        mi::mi_option_set(mi::PURGE_DELAY, 0);
    }
}

fn main() -> ExitCode {
    #[cfg(target_env = "gnu")]
    bound_allocator();
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

#[cfg(all(test, target_env = "gnu"))]
mod tests {
    use super::mi;

    /// The option numbers name the options meant: their defaults are
    /// mimalloc's documented ones (read before `bound_allocator` runs).
    #[test]
    fn mimalloc_options_are_the_ones_meant() {
        // SAFETY: reading an option has no precondition.
        let (purge, thp) = unsafe {
            (
                mi::mi_option_get(mi::PURGE_DELAY),
                mi::mi_option_get(mi::ALLOW_THP),
            )
        };
        assert_eq!((purge, thp), (1000, 1));
    }
}
