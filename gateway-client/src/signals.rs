//! SIGTERM and SIGINT, for watch mode, with libc alone: both are blocked
//! (in this thread and every thread started after), and the loop's pause
//! between two looks is a `sigtimedwait(2)` on them. So a stop request is
//! taken between two looks, never in the middle of one, with no handler
//! and nothing shared. Programs the client starts get an empty mask (std
//! resets it in the child).

use std::io;
use std::time::Instant;

/// The stop signals, blocked.
pub(crate) struct StopSignals {
    set: libc::sigset_t,
}

impl StopSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread (and the threads it
    /// starts from now on).
    pub(crate) fn block() -> io::Result<StopSignals> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid sigset_t and signal numbers; a null old set.
        let rc = unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(StopSignals { set })
    }

    /// Waits until `deadline`, or until SIGTERM or SIGINT comes (or came
    /// meanwhile): `true` then.
    pub(crate) fn wait_until(&self, deadline: Instant) -> bool {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // SAFETY: timespec is plain data (some libcs pad it).
            let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
            // `as _`: time_t's width differs between libcs (musl's is
            // changing); a wait is never longer than i32::MAX seconds.
            ts.tv_sec = left.as_secs().min(i32::MAX as u64) as _;
            ts.tv_nsec = left.subsec_nanos() as _;
            // SAFETY: a valid set and timespec; no siginfo wanted.
            let sig = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) };
            if sig > 0 {
                return true;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                _ => return false,
            }
        }
    }
}
