//! Measuring one child process: wall time from spawn to exit, its user and
//! system CPU time, and its peak resident set size, all from `wait4(2)` on
//! that child alone (so one greedy child never hides in another's numbers).
//! Plus the few statistics the runner prints (median, percentiles).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Error;

/// One finished child.
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured {
    pub wall: Duration,
    pub cpu: Duration,
    /// Peak RSS in bytes.
    pub max_rss: u64,
}

/// Runs `cmd` through a fresh, small copy of this program
/// (`bench measure -- CMD...`) and returns what that copy measured.
///
/// Why not [`run`] directly: Linux keeps the largest RSS a process had across
/// `exec`, and a child spawned by a large parent starts as (a copy of, or with
/// `vfork` the very) parent's address space, so its `ru_maxrss` is at least
/// the parent's. The runner holds data sets; the helper holds ~2 MB, which
/// is then the floor of the figure. stdout of the measured program is
/// discarded, stderr passed through.
pub fn run_clean(cmd: &Command) -> Result<Measured, Error> {
    clean(cmd, None)
}

/// [`run_clean`] with the file `stdin` on the command's standard input.
pub fn run_clean_with_stdin(cmd: &Command, stdin: &std::path::Path) -> Result<Measured, Error> {
    clean(cmd, Some(stdin))
}

fn clean(cmd: &Command, stdin: Option<&std::path::Path>) -> Result<Measured, Error> {
    let me = std::env::current_exe().map_err(|e| Error::command("bench", e.to_string()))?;
    let mut helper = Command::new(&me);
    helper.arg("measure");
    if let Some(file) = stdin {
        helper.arg("--stdin").arg(file);
    }
    let out = helper
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::command(&me.display().to_string(), e.to_string()))?;
    let (text, nums) = numbers_in(&out.stdout);
    match (out.status.success(), nums.as_slice()) {
        (true, [wall, cpu, rss, ..]) => Ok(Measured {
            wall: Duration::from_nanos(*wall),
            cpu: Duration::from_nanos(*cpu),
            max_rss: *rss,
        }),
        _ => Err(Error::command(&format!("{cmd:?}"), text.trim().to_string())),
    }
}

/// What a copy of this program printed, and the numbers in it (words that
/// parse as unsigned integers, in order): how [`run_clean`] and the musl
/// parse figure read their child's answer.
pub fn numbers_in(stdout: &[u8]) -> (String, Vec<u64>) {
    let text = String::from_utf8_lossy(stdout).into_owned();
    let nums = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (text, nums)
}

/// The helper's side of [`run_clean`]: runs `argv` with stdout discarded
/// and prints `wall_ns cpu_ns max_rss_bytes`.
pub fn helper(argv: &[std::ffi::OsString]) -> Result<String, Error> {
    // [--stdin FILE] [--] CMD ARGS...
    let (stdin, argv) = match argv {
        [flag, file, rest @ ..] if flag == "--stdin" => (Some(file), rest),
        _ => (None, argv),
    };
    let argv = argv.strip_prefix(&["--".into()]).unwrap_or(argv);
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::Usage("measure: missing the command".into()))?;
    let input = match stdin {
        Some(f) => Stdio::from(
            std::fs::File::open(f).map_err(|e| Error::io("cannot read", f.as_ref(), e))?,
        ),
        None => Stdio::null(),
    };
    let m = run_with(
        Command::new(program).args(args).stdout(Stdio::null()),
        input,
    )?;
    Ok(format!(
        "{} {} {}",
        m.wall.as_nanos(),
        m.cpu.as_nanos(),
        m.max_rss
    ))
}

/// Runs `cmd` (stdout and stderr discarded unless the caller set them) and
/// measures it. A non-zero exit is an error naming the command. Its peak RSS
/// is at least this process's (see [`run_clean`]).
pub fn run(cmd: &mut Command) -> Result<Measured, Error> {
    run_with(cmd, Stdio::null())
}

/// [`run`] with `stdin` on the command's standard input.
fn run_with(cmd: &mut Command, stdin: Stdio) -> Result<Measured, Error> {
    let name = format!("{cmd:?}");
    cmd.stdin(stdin);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| Error::command(&name, format!("cannot start: {e}")))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = loop {
        // SAFETY: valid pointers to locals; pid is our own unwaited child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = start.elapsed();
    // The child is reaped; std's handle must not wait for it again.
    std::mem::forget(child);
    if got != pid {
        return Err(Error::command(
            &name,
            format!("wait4 failed: {}", std::io::Error::last_os_error()),
        ));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(Error::command(
            &name,
            format!("failed (wait status {status:#x})"),
        ));
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss: usage.ru_maxrss as u64 * 1024,
    })
}

/// The median of some durations (the upper one of an even count).
pub fn median(xs: &mut [Duration]) -> Duration {
    percentile(xs, 50.0)
}

/// The `p`th percentile (nearest rank) of some durations; zero when empty.
pub fn percentile(xs: &mut [Duration], p: f64) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    xs.sort_unstable();
    let rank = ((p / 100.0) * xs.len() as f64).ceil() as usize;
    xs[rank.clamp(1, xs.len()) - 1]
}

/// `1.23 ms`, `456 µs`, `7.8 s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// `123.4 MB` (10^6 bytes).
pub fn fmt_bytes(b: u64) -> String {
    if b >= 1_000_000 {
        format!("{:.1} MB", b as f64 / 1e6)
    } else {
        format!("{:.1} kB", b as f64 / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut xs: Vec<Duration> = [5, 1, 4, 2, 3].map(Duration::from_millis).to_vec();
        assert_eq!(median(&mut xs), Duration::from_millis(3));
        assert_eq!(percentile(&mut xs, 100.0), Duration::from_millis(5));
        assert_eq!(percentile(&mut xs, 0.0), Duration::from_millis(1));
        assert_eq!(median(&mut []), Duration::ZERO);
    }

    #[test]
    fn measures_a_real_child() {
        let m = run(&mut Command::new("true")).unwrap();
        assert!(m.max_rss > 0);
        assert!(run(&mut Command::new("false")).is_err());
    }
}
