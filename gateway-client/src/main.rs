//! The `gateway-client` binary: everything happens in [`gateway_client::run::run`].
//!
//! The program starts at C's `main` (`#![no_main]`), not at std's start-up
//! code: cron starts the client every minute (a watch mode once), and std's
//! start-up costs about twenty system calls, among them a read of
//! `/proc/self/maps` (glibc locating the main thread's stack for std's
//! stack-overflow guard) and an alternate signal stack. What of it the
//! client relies on is done here: SIGPIPE ignored, so that output to a
//! closed pipe is an error (`EPIPE`) that `run` reports, not a kill; and
//! descriptors 0–2 opened on `/dev/null` when they are closed, so that no
//! file or socket the client opens can take their place. A stack overflow
//! is then a plain SIGSEGV instead of a message first.

// Not in the unit-test build of this file, where libtest's `main` runs.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
use std::ffi::{CStr, OsString, c_char, c_int};
#[cfg(not(test))]
use std::os::unix::ffi::OsStringExt;

/// C's entry point: the arguments from `argv` (std's `env::args` is empty
/// before std's start-up on some C libraries), the exit status from `run`.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: plain system call; the previous disposition is not needed.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    open_standard_fds();
    let count = usize::try_from(argc).unwrap_or(0);
    let args = (1..count).filter_map(|i| {
        // SAFETY: the C runtime passes `argc` valid pointers in `argv`.
        let arg = unsafe { *argv.add(i) };
        // SAFETY: each is a NUL-terminated string that lives as long as
        // the process.
        (!arg.is_null()).then(|| unsafe { CStr::from_ptr(arg) }.to_bytes().to_vec())
    });
    // `exit` flushes std's stdout, as a return from std's `main` would.
    std::process::exit(gateway_client::run::run(args.map(OsString::from_vec)))
}

/// Opens `/dev/null` on each of descriptors 0, 1 and 2 that is closed.
#[cfg(not(test))]
fn open_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: a valid array of three pollfd; a zero timeout never blocks.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // SAFETY: a valid C string. The lowest free descriptor is taken,
        // which is this one (the lower ones are open by now).
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if fd >= 0 && fd != p.fd {
            // SAFETY: a descriptor we just opened and own.
            unsafe { libc::close(fd) };
        }
    }
}
