//! Live mode: the tunnels of this machine, from the real `ps` and `/proc`.
//!
//! [`collect`] runs `ps auxww` under a time limit, parses its
//! output as it comes through the pipe with the same parser as a capture
//! ([`crate::ps`]), and completes each record from `/proc`, which a capture
//! cannot give:
//!
//! - `user`, in full: procps cuts long names to `name+` and busybox cuts
//!   them silently, so the owner is taken from the uid of the process (the
//!   owner of `/proc/PID`, or the real uid in `/proc/PID/status` when that
//!   says root), named by `/etc/passwd` (read directly).
//!   An account that `/etc/passwd` does not know (LDAP, sssd) is asked of a
//!   second `ps -o pid=,user:64=` for the cut names only; failing that a cut
//!   name becomes the numeric uid, and an uncut one stays as ps printed it.
//! - `started`, Unix seconds, from the start time in `/proc/PID/stat` (clock
//!   ticks since boot) and the boot time `btime` in `/proc/stat`.
//! - `listening`, `connections`, `connected` and, with `--probe`, `vnc`:
//!   see [`crate::health`].
//!
//! While `ps` runs, the sockets ([`crate::sockets`]), the accounts and the
//! boot time are read ([`Context`]); after it, each ssh process's `/proc`
//! files once, relative to one descriptor of its directory ([`ProcDir`]).
//! [`rescan`] finds the same records from `/proc` alone, without `ps`, as
//! watch mode does at each look.
//!
//! A process that has gone, or whose PID now belongs to something that is
//! not ssh (ps and `/proc` are read at different moments), keeps what ps
//! said, with `started` unknown and its health unknown. Without `/proc`
//! (another system) the same holds for every record: live mode still works,
//! it only knows less.
//!
//! A hung `ps` (an NFS mount in a process's cwd can do that) never hangs the
//! cron job: its output is read as `poll(2)` says it is there and its exit
//! awaited on a pidfd, never past the time limit, and it is killed when the
//! limit passes. Nothing sleeps: `ps` is read the moment it writes and
//! reaped the moment it exits.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::health;
use crate::lines;
use crate::ps;
use crate::sockets;
use crate::ssh_args;
use crate::tunnel::{Health, Tunnel};

/// The arguments given to `ps`: every process, user-oriented columns,
/// unlimited width. busybox `ps` ignores them and prints its own layout,
/// which the parser reads as well.
pub(crate) const PS_ARGS: &[&str] = &["auxww"];

/// The most `ps` output read (a machine with a million processes is not a
/// gateway); beyond it, live mode fails rather than grow without bound.
pub(crate) const MAX_PS_OUTPUT: usize = 64 << 20;

/// The most of `ps`'s stderr kept for an error message.
const MAX_STDERR: usize = 64 << 10;

/// Clock ticks per second in `/proc/PID/stat`. This is Linux's `USER_HZ`,
/// which is part of the kernel's ABI and is 100 on every architecture
/// whatever the kernel's internal `HZ` (that is what `sysconf(_SC_CLK_TCK)`
/// returns); using the constant keeps the client free of libc bindings.
pub(crate) const CLOCK_TICKS: u64 = 100;

/// Why live mode could not list the processes. Each variant names the
/// program it ran.
#[derive(Debug)]
pub enum LiveError {
    /// No `ps` (nor busybox) in `PATH`, `/bin` or `/usr/bin`.
    NoPs { path: String },
    /// `ps` could not be started.
    Spawn { program: PathBuf, source: io::Error },
    /// `ps` did not finish within the time limit and was killed.
    Timeout { program: PathBuf, timeout: Duration },
    /// `ps` exited with a failure; `stderr` is the first line it printed.
    Failed {
        program: PathBuf,
        status: ExitStatus,
        stderr: String,
    },
    /// Waiting for `ps` or reading its output failed.
    Io { program: PathBuf, source: io::Error },
    /// `ps` printed more than [`MAX_PS_OUTPUT`] bytes.
    TooLarge { program: PathBuf, limit: usize },
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::NoPs { path } => write!(
                f,
                "cannot find ps: not in PATH ({path}), /bin or /usr/bin, and no busybox either (use --ps-file)"
            ),
            LiveError::Spawn { program, source } => {
                write!(f, "cannot run {}: {source}", program.display())
            }
            LiveError::Timeout { program, timeout } => write!(
                f,
                "{} did not finish within {} ms and was killed",
                program.display(),
                timeout.as_millis()
            ),
            LiveError::Failed {
                program,
                status,
                stderr,
            } => {
                write!(f, "{} failed ({status})", program.display())?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            LiveError::Io { program, source } => {
                write!(
                    f,
                    "cannot read the output of {}: {source}",
                    program.display()
                )
            }
            LiveError::TooLarge { program, limit } => write!(
                f,
                "{} printed more than {limit} bytes; refusing to read further",
                program.display()
            ),
        }
    }
}

impl std::error::Error for LiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LiveError::Spawn { source, .. } | LiveError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The program to run for the process list, and the words to put before
/// [`PS_ARGS`] (`ps` itself, or `busybox ps` when busybox is all there is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsProgram {
    pub path: PathBuf,
    pub prefix: Vec<&'static str>,
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable `name` in `PATH`, then in `/bin` and `/usr/bin`
/// (cron's `PATH` can be short).
fn find_program(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let in_path = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|d| d.is_absolute());
    in_path
        .chain([PathBuf::from("/bin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Finds `ps`, or `busybox` to run as `busybox ps`.
pub fn find_ps() -> Result<PsProgram, LiveError> {
    let path_var = std::env::var_os("PATH");
    if let Some(path) = find_program("ps", path_var.as_deref()) {
        return Ok(PsProgram {
            path,
            prefix: Vec::new(),
        });
    }
    if let Some(path) = find_program("busybox", path_var.as_deref()) {
        return Ok(PsProgram {
            path,
            prefix: vec!["ps"],
        });
    }
    Err(LiveError::NoPs {
        path: path_var.map_or_else(String::new, |p| p.to_string_lossy().into_owned()),
    })
}

/// Runs `ps auxww` (see [`find_ps`]) and returns what it printed (the
/// tests' look at the real `ps`; [`collect`] reads it as it comes).
#[cfg(test)]
pub(crate) fn run_ps(timeout: Duration) -> Result<String, LiveError> {
    let ps = find_ps()?;
    let mut args = ps.prefix.clone();
    args.extend_from_slice(PS_ARGS);
    run_ps_program(&ps.path, &args, timeout)
}

/// All the bytes of a reader.
fn read_all(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Runs `program args...` with its output captured, and returns its stdout
/// when it exits 0 within `timeout`. A program still running at the
/// deadline is killed (and reaped); output still held open by a program's
/// children past the deadline is given up on. Neither case waits longer.
pub(crate) fn run_ps_program(
    program: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<String, LiveError> {
    let stdout = run_program(program, args, timeout, || {}, read_all)?;
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// The output of a running program: its stdout as a [`Read`] that waits
/// with `poll(2)` and never past the deadline (then `TimedOut`), at most
/// [`MAX_PS_OUTPUT`] bytes of it (then the end, and `too_large`), and its
/// stderr drained meanwhile (so a chatty program cannot block on it), the
/// first [`MAX_STDERR`] bytes kept.
struct Output {
    stdout: ChildStdout,
    stderr: Option<ChildStderr>,
    kept_stderr: Vec<u8>,
    deadline: Instant,
    total: usize,
    too_large: bool,
}

/// Waits until one of `fds` is readable (or closed) or `deadline` passes;
/// returns which are ready (`TimedOut` at the deadline).
fn wait_readable(fds: &[libc::c_int], deadline: Instant) -> io::Result<[bool; 3]> {
    let mut p = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 3];
    for (slot, &fd) in p.iter_mut().zip(fds) {
        slot.fd = fd;
    }
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // Rounded up, so that the wait does not end just short of the deadline.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(p.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n > 0 {
            return Ok([0, 1, 2].map(|i| i < fds.len() && p[i].revents != 0));
        }
    }
}

impl Output {
    /// Reads what stderr has (it is readable), keeping the first bytes.
    fn drain_stderr(&mut self) {
        let Some(err) = self.stderr.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        match err.read(&mut buf) {
            Ok(0) => self.stderr = None,
            Ok(n) => {
                let room = MAX_STDERR.saturating_sub(self.kept_stderr.len());
                self.kept_stderr.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.stderr = None,
        }
    }

    /// Reads stderr to its end, or to the deadline.
    fn finish_stderr(&mut self) {
        while let Some(fd) = self.stderr.as_ref().map(AsRawFd::as_raw_fd) {
            match wait_readable(&[fd], self.deadline) {
                Ok(_) => self.drain_stderr(),
                Err(_) => return,
            }
        }
    }
}

impl Read for Output {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the limit is read, to notice more.
        let room = (MAX_PS_OUTPUT + 1).saturating_sub(self.total);
        if room == 0 {
            self.too_large = true;
            return Ok(0);
        }
        let want = buf.len().min(room);
        loop {
            let out = self.stdout.as_raw_fd();
            let ready = match self.stderr.as_ref().map(AsRawFd::as_raw_fd) {
                Some(err) => wait_readable(&[out, err], self.deadline)?,
                None => wait_readable(&[out], self.deadline)?,
            };
            if ready[1] {
                self.drain_stderr();
            }
            if ready[0] {
                // Readable: this read does not block.
                let n = self.stdout.read(&mut buf[..want])?;
                self.total += n;
                return Ok(n);
            }
        }
    }
}

/// A descriptor that becomes readable when process `pid` (our unwaited
/// child) exits: `pidfd_open(2)`, Linux 5.3 and later.
fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain system call; the descriptor is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a fresh descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Runs `program args...` as [`run_ps_program`] does, with its stdout
/// going to `read` as it comes instead of into memory. `meanwhile` runs
/// right after the program starts, while it works (live mode reads the
/// sockets and accounts then).
///
/// Nothing sleeps: the output is read as `poll(2)` says it is there, and
/// the exit is awaited on a pidfd (a blocking wait with the deadline
/// kept); only kernels before 5.3, without pidfds, check the exit every
/// millisecond once the output has ended.
fn run_program<T>(
    program: &Path,
    args: &[&str],
    timeout: Duration,
    meanwhile: impl FnOnce(),
    read: impl FnOnce(&mut Output) -> io::Result<T>,
) -> Result<T, LiveError> {
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The same layout whoever runs us: no user format, C number format.
        .env_remove("PS_FORMAT")
        .env_remove("PS_PERSONALITY")
        .env("LC_ALL", "C")
        // START in UTC, to compare with /proc's start time (`start_agrees`).
        .env("TZ", "UTC0")
        .spawn()
        .map_err(|source| LiveError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    let io_err = |source| LiveError::Io {
        program: program.to_path_buf(),
        source,
    };
    let timed_out = || LiveError::Timeout {
        program: program.to_path_buf(),
        timeout,
    };
    let (Some(stdout), stderr) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io_err(io::ErrorKind::BrokenPipe.into()));
    };
    meanwhile();
    let mut output = Output {
        stdout,
        stderr,
        kept_stderr: Vec::new(),
        deadline,
        total: 0,
        too_large: false,
    };
    let fail = |child: &mut std::process::Child, e: LiveError| {
        let _ = child.kill();
        let _ = child.wait();
        Err(e)
    };
    let result = match read(&mut output) {
        Ok(v) => v,
        Err(e) if e.kind() == io::ErrorKind::TimedOut => return fail(&mut child, timed_out()),
        Err(e) => return fail(&mut child, io_err(e)),
    };
    // Checked first: when we stop reading, ps dies of SIGPIPE.
    if output.too_large {
        return fail(
            &mut child,
            LiveError::TooLarge {
                program: program.to_path_buf(),
                limit: MAX_PS_OUTPUT,
            },
        );
    }
    output.finish_stderr();
    let Output { kept_stderr, .. } = output;

    // The output has ended: the program is exiting (or left a child of its
    // own behind, which is not waited for).
    let exited = match pidfd(child.id()) {
        Some(fd) => wait_readable(&[fd.as_raw_fd()], deadline).is_ok(),
        None => loop {
            match child.try_wait() {
                Ok(Some(_)) => break true,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => break false,
            }
        },
    };
    if !exited {
        return fail(&mut child, timed_out());
    }
    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => return Err(io_err(e)),
    };
    if !status.success() {
        return Err(LiveError::Failed {
            program: program.to_path_buf(),
            status,
            stderr: first_line(&kept_stderr),
        });
    }
    Ok(result)
}

/// The first non-blank line of some bytes, trimmed and at most 200 characters.
fn first_line(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

/// What live mode reads of this host once per run, besides the processes:
/// the boot time, the accounts, and the sockets of our network namespace.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// `btime` of `/proc/stat`: boot time, Unix seconds.
    pub(crate) btime: Option<u64>,
    /// The sockets and account names for the health check.
    pub(crate) host: health::Host,
    /// The ESTABLISHED sockets of the last rescan's walk, given again while
    /// none came or went ([`sockets::Established`]): a watch mode that
    /// keeps its `Context` walks the kernel's established hash only after
    /// a change.
    established: sockets::Established,
}

impl Context {
    /// Everything, the sockets of both address families included; the
    /// ESTABLISHED ones only when `connections` are counted.
    pub(crate) fn read(connections: bool) -> Context {
        let mut ctx = Context::without_sockets();
        ctx.host.sockets = if connections {
            sockets::own_namespace()
        } else {
            sockets::own_namespace_for(|_| false, &ctx.established)
        };
        ctx.host.connections = connections;
        ctx
    }

    /// The boot time, the accounts and our network namespace, without the
    /// sockets (`host.sockets` is `None`): what a rescan reads once.
    pub fn without_sockets() -> Context {
        let mut buf = Vec::new();
        let btime = read_file("/proc/stat", &mut buf)
            .ok()
            .and_then(|()| parse_btime(&String::from_utf8_lossy(&buf)));
        let names = fs::read_to_string("/etc/passwd")
            .map(|s| parse_passwd(&s))
            .unwrap_or_default();
        Context {
            btime,
            host: health::Host {
                own_ns: health::net_namespace("self"),
                sockets: None,
                names,
                connections: false,
            },
            established: sockets::Established::default(),
        }
    }
}

/// The tunnels of this machine, completed from `/proc` (see the module
/// doc), with what the `ps` pass skipped. Each ssh process's exact argv is
/// read from `/proc` where possible ([`argv_matching`]). `probe` also probes
/// the VNC forwards ([`health::probe_vnc`]); `connections` counts the
/// connections to each forward and who made them (else they stay unknown:
/// the benchmark's before and after of that count).
///
/// While `ps` runs, the sockets and accounts are read ([`Context`]); then
/// each ssh process's `/proc` files once ([`proc_info`]).
pub fn collect(
    timeout: Duration,
    probe: bool,
    connections: bool,
) -> Result<ps::PsOutcome, LiveError> {
    let deadline = Instant::now() + timeout;
    let ps = find_ps()?;
    let mut args = ps.prefix.clone();
    args.extend_from_slice(PS_ARGS);
    let mut ctx = None;
    let reader = run_program(
        &ps.path,
        &args,
        timeout,
        || ctx = Some(Context::read(connections)),
        |out| ps::PsReader::read(out, lines::CHUNK),
    )?;
    let ctx = ctx.unwrap_or_else(|| Context::read(connections));
    let mut infos: HashMap<u32, ProcInfo> = HashMap::new();
    for pid in reader.pids() {
        infos
            .entry(pid)
            .or_insert_with(|| proc_info(pid, ctx.btime));
    }
    let mut outcome =
        reader.finish_with(|pid, command| argv_matching(&infos.get(&pid)?.cmdline, command));
    // A pid that ended and was taken by another ssh with the same command
    // line between ps and /proc: its /proc data is another process's.
    for t in &outcome.tunnels {
        if infos
            .get(&t.pid)
            .is_some_and(|i| !start_agrees(&t.start, i.started))
        {
            infos.remove(&t.pid);
        }
    }
    // A second ps (for names /etc/passwd lacks) gets what is left of the limit.
    complete_with(
        &mut outcome.tunnels,
        &infos,
        &ctx,
        deadline.saturating_duration_since(Instant::now()),
    );
    if probe {
        health::probe_vnc(&mut outcome.tunnels);
    }
    Ok(outcome)
}

/// Whether ps's START column (printed in UTC: `HH:MM` within a day, `MonDD`
/// within the year, else the year) names the start time `started` (Unix
/// seconds, from `/proc`). `true` when either is unknown or START has
/// another form (busybox has none).
pub(crate) fn start_agrees(start: &str, started: Option<u64>) -> bool {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Some(started) = started else {
        return true;
    };
    let (y, m, d, secs) = crate::utc::utc_civil(started);
    let b = start.as_bytes();
    match b.len() {
        5 if b[2] == b':' => {
            let (Ok(h), Ok(min)) = (start[..2].parse::<u64>(), start[3..].parse::<u64>()) else {
                return true;
            };
            // The same minute, or the next (ps rounds nothing, but a start
            // at :59.9 may be read either side of the minute).
            let shown = h * 60 + min;
            let real = secs / 60;
            shown == real || shown == (real + 1) % 1440
        }
        5 if start.is_char_boundary(3) && MONTHS.contains(&&start[..3]) => {
            let month = MONTHS.iter().position(|x| *x == &start[..3]).unwrap_or(0) as i64 + 1;
            start[3..]
                .parse::<i64>()
                .is_ok_and(|day| month == m && day == d)
        }
        4 => start.parse::<i64>().is_ok_and(|year| year == y),
        _ => true,
    }
}

/// Splits NUL-separated `cmdline` bytes into arguments, if they join with
/// spaces into `command`.
pub(crate) fn argv_matching(cmdline: &[u8], command: &str) -> Option<Vec<String>> {
    let text = std::str::from_utf8(cmdline.strip_suffix(b"\0").unwrap_or(cmdline)).ok()?;
    if text.is_empty() || text.replace('\0', " ") != command {
        return None;
    }
    Some(text.split('\0').map(str::to_string).collect())
}

/// What `/proc` tells about one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProcInfo {
    /// Whether the PID still runs ssh or autossh (not gone, not reused).
    pub is_ssh: bool,
    /// `/proc/PID/cmdline`: the arguments, each ending in NUL.
    pub cmdline: Vec<u8>,
    /// Real uid.
    pub uid: Option<u32>,
    /// Start, Unix seconds.
    pub started: Option<u64>,
    /// User and system CPU time, in clock ticks.
    pub cpu_ticks: Option<u64>,
}

/// `/proc/PID` opened once (`O_PATH`), for the files under it: each is
/// then opened relative to it, without looking the pid up again, and all
/// are of the same process (a pid reused meanwhile gives errors, not
/// another process's files).
pub(crate) struct ProcDir(OwnedFd);

impl ProcDir {
    pub(crate) fn open(pid: u32) -> Option<ProcDir> {
        let path = std::ffi::CString::new(format!("/proc/{pid}")).ok()?;
        ProcDir::open_path(&path).ok()
    }

    /// Any directory, `O_PATH`.
    fn open_path(path: &std::ffi::CStr) -> io::Result<ProcDir> {
        // SAFETY: a valid C string; the descriptor is owned below.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(ProcDir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The whole of file `name` (a C string: `c"stat"`) into `buf`.
    pub(crate) fn read(&self, name: &std::ffi::CStr, buf: &mut Vec<u8>) -> io::Result<()> {
        // SAFETY: a valid directory descriptor and C string.
        let fd = unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let file = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        read_proc_file(file, buf)
    }

    /// The target of symbolic link `name` (`c"ns/net"`).
    pub(crate) fn read_link(&self, name: &std::ffi::CStr) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 256];
        // SAFETY: a valid directory descriptor, C string and buffer.
        let n = unsafe {
            libc::readlinkat(
                self.0.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        // Our links (`net:[4026531840]`, `socket:[123]`) are short; a
        // longer one is not one of them.
        let n = usize::try_from(n).ok().filter(|&n| n < buf.len())?;
        buf.truncate(n);
        Some(buf)
    }

    /// The inodes of the sockets among the process's open files (the
    /// `socket:[INODE]` links in `fd/`), looking at the links in order and
    /// stopping once all of `wanted` are found (when given). `None` when
    /// `fd/` cannot be read (another account's process, unless we are
    /// root; or the process is gone).
    pub(crate) fn socket_inodes(&self, wanted: Option<&HashSet<u64>>) -> Option<HashSet<u64>> {
        // SAFETY: a valid directory descriptor and C string.
        let fd = unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                c"fd".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd is a fresh directory descriptor; the stream owns it
        // from here and closedir closes it.
        let dir = unsafe { libc::fdopendir(fd) };
        if dir.is_null() {
            // SAFETY: fdopendir failed, so fd is still ours.
            unsafe { libc::close(fd) };
            return None;
        }
        let mut set = HashSet::new();
        let mut found = 0;
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: dir is an open stream; the entry stays valid until
            // the next readdir or closedir.
            let entry = unsafe { libc::readdir(dir) };
            if entry.is_null() {
                break;
            }
            // SAFETY: d_name is a NUL-terminated name inside the entry.
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
            if name.to_bytes().first() == Some(&b'.') {
                continue;
            }
            // SAFETY: the stream's descriptor, a C string and a buffer.
            let n = unsafe {
                libc::readlinkat(
                    libc::dirfd(dir),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            // An fd closed between listing and reading is simply not there.
            let Some(inode) = usize::try_from(n)
                .ok()
                .and_then(|n| std::str::from_utf8(&buf[..n]).ok())
                .and_then(health::parse_socket_link)
            else {
                continue;
            };
            if wanted.is_some_and(|w| w.contains(&inode)) {
                found += 1;
            }
            set.insert(inode);
            if wanted.is_some_and(|w| found == w.len()) {
                break;
            }
        }
        // SAFETY: dir is open, and closed once.
        unsafe { libc::closedir(dir) };
        Some(set)
    }

    /// The owner of the directory: the process's effective uid, or root
    /// when it is not dumpable.
    pub(crate) fn owner(&self) -> Option<u32> {
        // SAFETY: stat is plain old data; fstat only writes it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and pointer to a local.
        (unsafe { libc::fstat(self.0.as_raw_fd(), &mut st) } == 0).then_some(st.st_uid)
    }
}

/// Reads `/proc/PID` (`btime`: boot time from `/proc/stat`): `cmdline`,
/// and for ssh processes `stat` and the owner (`status` only when the owner
/// is root), each once, relative to one descriptor of the directory.
pub(crate) fn proc_info(pid: u32, btime: Option<u64>) -> ProcInfo {
    let Some(dir) = ProcDir::open(pid) else {
        return ProcInfo::default();
    };
    let mut cmdline = Vec::new();
    if dir.read(c"cmdline", &mut cmdline).is_err() || !runs_ssh(&cmdline) {
        return ProcInfo::default();
    }
    ssh_info(&dir, cmdline, btime)
}

/// Whether a `cmdline` is ssh's or autossh's: the first word of the
/// arguments joined with spaces, as ps shows them.
fn runs_ssh(cmdline: &[u8]) -> bool {
    cmdline
        .split(|&b| b == 0 || b.is_ascii_whitespace())
        .find(|w| !w.is_empty())
        .and_then(|w| std::str::from_utf8(w).ok())
        .and_then(ssh_args::program_of_word)
        .is_some()
}

/// The rest of [`proc_info`] for a process whose `cmdline` runs ssh.
fn ssh_info(dir: &ProcDir, cmdline: Vec<u8>, btime: Option<u64>) -> ProcInfo {
    let mut buf = Vec::new();
    // /proc/PID belongs to the process's effective uid (ssh is not
    // set-uid: its real one), or to root when the process is not dumpable:
    // a stat costs far less than the kernel's formatting of `status`,
    // which is read when the stat says root.
    let uid = match dir.owner() {
        Some(u) if u != 0 => Some(u),
        _ => dir
            .read(c"status", &mut buf)
            .ok()
            .and_then(|()| parse_status_uid(&String::from_utf8_lossy(&buf))),
    };
    let stat = dir
        .read(c"stat", &mut buf)
        .ok()
        .map(|()| String::from_utf8_lossy(&buf).into_owned());
    let started = stat
        .as_deref()
        .and_then(parse_stat_starttime)
        .zip(btime)
        .map(|(ticks, boot)| boot + ticks / CLOCK_TICKS);
    ProcInfo {
        is_ssh: true,
        cmdline,
        uid,
        started,
        cpu_ticks: stat.as_deref().and_then(parse_stat_cpu_ticks),
    }
}

/// Reads `/proc/PID/cmdline` into `buf` relative to `proc` (a descriptor
/// of `/proc`), with one read when it fits: the cheapest way to look at
/// every process. False when the process is gone.
fn read_cmdline_at(proc: &OwnedFd, pid: u32, buf: &mut Vec<u8>) -> bool {
    let Ok(name) = std::ffi::CString::new(format!("{pid}/cmdline")) else {
        return false;
    };
    // SAFETY: a valid directory descriptor and C string.
    let fd = unsafe {
        libc::openat(
            proc.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let file = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    read_proc_file(file, buf).is_ok()
}

/// The whole of `/proc` file `path` into `buf`, with one read when it
/// fits ([`read_proc_file`]; `fs::read` would read it in growing steps,
/// since `/proc` gives its files no size).
pub(crate) fn read_file(path: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    read_proc_file(fs::File::open(path)?, buf)
}

/// The whole of a `/proc` file of one record (`cmdline`, `stat`, `status`)
/// into `buf`, with one read when it fits: a short read of these files is
/// their end (the kernel formats the whole record at once and copies all
/// of it that fits), so the read that would return 0 is saved.
fn read_proc_file(mut file: fs::File, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.resize(4096, 0);
    let mut got = 0;
    loop {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) if got + n < buf.len() => {
                got += n;
                break;
            }
            Ok(n) => {
                got += n;
                buf.resize(buf.len() * 2, 0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(())
}

/// Fields 14 and 15 of `/proc/PID/stat`, `utime + stime`, in clock ticks.
pub(crate) fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after) = stat.rsplit_once(')')?;
    let mut w = after.split_ascii_whitespace().skip(14 - 3);
    let utime: u64 = w.next()?.parse().ok()?;
    let stime: u64 = w.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time as procps `ps aux` prints TIME: minutes and seconds, `M:SS`.
pub(crate) fn cpu_time_text(ticks: u64) -> String {
    let secs = ticks / CLOCK_TICKS;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The real uid from `/proc/PID/status` (`Uid:\treal\teffective\tsaved\tfs`).
pub(crate) fn parse_status_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|u| u.parse().ok())
}

/// Field 22 of `/proc/PID/stat`, `starttime`, in clock ticks since boot.
/// Field 2 is the command name in parentheses, which may itself hold spaces
/// and `)`, so fields are counted from the last `)`.
pub(crate) fn parse_stat_starttime(stat: &str) -> Option<u64> {
    let (_, after) = stat.rsplit_once(')')?;
    // After ")": field 3 (state) is the first word, so field 22 is the 20th.
    after.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

/// `btime` (boot time, Unix seconds) from `/proc/stat`.
pub(crate) fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// uid to account name from `/etc/passwd` text; the first entry of a uid
/// wins, as for `getpwuid`. Comments and NIS `+`/`-` lines are skipped.
pub(crate) fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for line in text.lines() {
        if line.starts_with(['#', '+', '-']) {
            continue;
        }
        let mut f = line.split(':');
        let (Some(name), Some(_pw), Some(uid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        if let Ok(uid) = uid.parse::<u32>() {
            names.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    names
}

/// Whether ps cut a user name (procps marks it with a final `+`).
fn is_cut(user: &str) -> bool {
    user.len() > 1 && user.ends_with('+')
}

/// The name to report, from the uid (if known), the accounts, and what ps
/// printed: the account's name; else a cut name becomes the numeric uid;
/// else what ps printed.
pub(crate) fn resolve_user(
    uid: Option<u32>,
    names: &HashMap<u32, String>,
    ps_user: &str,
) -> String {
    match uid {
        Some(u) => match names.get(&u) {
            Some(n) => n.clone(),
            None if is_cut(ps_user) => u.to_string(),
            None => ps_user.to_string(),
        },
        None => ps_user.to_string(),
    }
}

/// Reads `ps -o pid=,user:64=` output: pid to user.
pub(crate) fn parse_pid_user(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_ascii_whitespace();
            let pid = w.next()?.parse().ok()?;
            let user = w.next()?;
            w.next().is_none().then(|| (pid, user.to_string()))
        })
        .collect()
}

/// Full names of the given processes from a wider ps USER column (procps
/// only: busybox refuses the format, and then nothing is learnt).
fn wide_ps_users(pids: &[u32], timeout: Duration) -> HashMap<u32, String> {
    let Ok(ps) = find_ps() else {
        return HashMap::new();
    };
    if !ps.prefix.is_empty() {
        return HashMap::new();
    }
    let list = pids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    match run_ps_program(&ps.path, &["-o", "pid=,user:64=", "-p", &list], timeout) {
        Ok(text) => parse_pid_user(&text),
        Err(_) => HashMap::new(),
    }
}

/// [`complete`] with the `/proc` of each process already read (`infos`,
/// by pid) and the host's [`Context`].
fn complete_with(
    tunnels: &mut [Tunnel],
    infos: &HashMap<u32, ProcInfo>,
    ctx: &Context,
    timeout: Duration,
) {
    if tunnels.is_empty() {
        return;
    }
    let names = &ctx.host.names;
    let blank = ProcInfo::default();
    let info = |pid: u32| infos.get(&pid).unwrap_or(&blank);

    // Names still cut after /etc/passwd: ask ps for a wider column.
    let mut unresolved: Vec<u32> = tunnels
        .iter()
        .filter(|t| {
            let uid = info(t.pid).uid;
            is_cut(&t.user) && uid.is_none_or(|u| !names.contains_key(&u))
        })
        .map(|t| t.pid)
        .collect();
    unresolved.sort_unstable();
    unresolved.dedup();
    let wide = if unresolved.is_empty() || timeout.is_zero() {
        HashMap::new()
    } else {
        wide_ps_users(&unresolved, timeout)
    };

    for t in tunnels.iter_mut() {
        let info = info(t.pid);
        t.user = match wide.get(&t.pid) {
            Some(name) if !is_cut(name) => name.clone(),
            _ => resolve_user(info.uid, names, &t.user),
        };
        t.started = info.started;
    }
    health::check(tunnels, &ctx.host, |pid| info(pid).uid);
    for t in tunnels.iter_mut() {
        if !info(t.pid).is_ssh {
            t.listening = Health::Unknown;
            t.connections = None;
            t.connected.clear();
        }
    }
}

/// The tunnels of this machine from `/proc` alone, without `ps`: what
/// watch mode (`crate::watch`) does at each look. One pass over `/proc`: every
/// process's `cmdline`, and for ssh and autossh processes their `status`
/// and `stat`; then the sockets, fresh (the ESTABLISHED ones only of the
/// address families that have a listener on a forward's port, see
/// [`sockets::dump`]), and the same checks as [`collect`]. `ctx` gives the
/// boot time and the accounts ([`Context::without_sockets`], read once).
/// Without `connections` the ESTABLISHED sockets are not asked for (the
/// kernel's walk of its established hash is most of a rescan's cost, see
/// [`sockets::dump`]) and `connections` stays unknown.
/// `start` and `cpu_time` are written as procps `ps aux` writes START
/// (with `TZ=UTC0`, as [`collect`] runs it) and TIME, so that a record is
/// the one [`collect`] gives for the same process (`tests/live.rs` compares
/// them).
pub fn rescan(ctx: &Context, connections: bool) -> io::Result<Vec<Tunnel>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut procs = Vec::new();
    let mut infos: HashMap<u32, ProcInfo> = HashMap::new();
    let proc = ProcDir::open_path(c"/proc")?;
    let mut cmdline = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !read_cmdline_at(&proc.0, pid, &mut cmdline) || !runs_ssh(&cmdline) {
            continue;
        }
        let Some(dir) = ProcDir::open(pid) else {
            continue;
        };
        let info = ssh_info(&dir, std::mem::take(&mut cmdline), ctx.btime);
        let Ok(text) =
            std::str::from_utf8(info.cmdline.strip_suffix(b"\0").unwrap_or(&info.cmdline))
        else {
            continue;
        };
        let user = info
            .uid
            .map(|u| {
                ctx.host
                    .names
                    .get(&u)
                    .cloned()
                    .unwrap_or_else(|| u.to_string())
            })
            .unwrap_or_default();
        procs.push(ps::ArgvProcess {
            pid,
            user,
            start: info
                .started
                .map(|s| crate::utc::ps_start(s, now))
                .unwrap_or_default(),
            cpu_time: info.cpu_ticks.map(cpu_time_text).unwrap_or_default(),
            argv: text.split('\0').map(str::to_string).collect(),
        });
        infos.insert(pid, info);
    }
    let mut tunnels = ps::tunnels_of_argv(&procs);
    for t in tunnels.iter_mut() {
        t.started = infos.get(&t.pid).and_then(|i| i.started);
    }
    let ports: Vec<u16> = tunnels
        .iter()
        .filter(|t| t.kind != crate::Kind::Remote)
        .map(|t| t.listen_port)
        .collect();
    let host = health::Host {
        own_ns: ctx.host.own_ns.clone(),
        sockets: sockets::own_namespace_for(
            |s| connections && ports.contains(&s.local.port()),
            &ctx.established,
        ),
        names: ctx.host.names.clone(),
        connections,
    };
    health::check(&mut tunnels, &host, |pid| {
        infos.get(&pid).and_then(|i| i.uid)
    });
    Ok(tunnels)
}

#[cfg(test)]
mod tests {
    #[test]
    fn argv_is_taken_only_when_it_is_what_ps_showed() {
        let cmdline = b"ssh\0-o\0LocalForward 5900 h:5951\0gw\0";
        assert_eq!(
            argv_matching(cmdline, "ssh -o LocalForward 5900 h:5951 gw"),
            Some(vec![
                "ssh".into(),
                "-o".into(),
                "LocalForward 5900 h:5951".into(),
                "gw".into()
            ])
        );
        // A reused pid, or a line ps cut or changed: the ps text is read instead.
        assert_eq!(
            argv_matching(cmdline, "ssh -o LocalForward 5900 h:5951 other"),
            None
        );
        assert_eq!(argv_matching(b"", ""), None);
        assert_eq!(argv_matching(b"\xff\0", "?"), None);
    }

    use super::*;

    /// Issue: a pid reused by another ssh (same command line) between ps
    /// and /proc gave the record the newcomer's data. ps's START, in UTC,
    /// must name /proc's start time.
    #[test]
    fn start_agrees_with_proc_in_every_form_ps_prints() {
        // 2026-11-23 21:06:46 UTC
        let t = Some(1_795_468_006);
        for ok in ["21:06", "21:07", "Nov23", "2026", "", "-", "Tue"] {
            assert!(start_agrees(ok, t), "{ok}");
        }
        for reused in ["21:04", "09:06", "Nov22", "Dec23", "2025"] {
            assert!(!start_agrees(reused, t), "{reused}");
        }
        assert!(start_agrees("21:04", None));
    }

    #[test]
    fn stat_fields_count_from_the_last_paren() {
        // Real /proc/PID/stat of an ssh, and the same with a hostile comm.
        let real = "4242 (ssh) S 1 4242 4242 0 -1 4194560 1021 0 0 0 3 1 0 0 20 0 1 0 183527 11702272 1720 18446744073709551615 1 1 0 0 0 0 0 4096 65536 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat_starttime(real), Some(183527));
        let odd = "4242 (a) b) c (d) S 1 4242 4242 0 -1 4194560 1021 0 0 0 3 1 0 0 20 0 1 0 183527 11702272 1720";
        assert_eq!(parse_stat_starttime(odd), Some(183527));
        assert_eq!(parse_stat_starttime("4242 (ssh) S 1 2 3"), None);
        assert_eq!(parse_stat_starttime("no paren at all"), None);
        assert_eq!(parse_stat_starttime(""), None);
    }

    #[test]
    fn status_uid_is_the_real_one() {
        let s = "Name:\tssh\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\nPPid:\t1\nUid:\t1001\t0\t1001\t1001\nGid:\t100\t100\t100\t100\n";
        assert_eq!(parse_status_uid(s), Some(1001));
        assert_eq!(parse_status_uid("Name:\tssh\n"), None);
        assert_eq!(parse_status_uid("Uid:\tx\n"), None);
    }

    #[test]
    fn btime() {
        let s = "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1795465754\nprocesses 7\n";
        assert_eq!(parse_btime(s), Some(1_795_465_754));
        assert_eq!(parse_btime("cpu 1\n"), None);
    }

    #[test]
    fn passwd_names() {
        let text = "root:x:0:0:root:/root:/bin/bash\n# comment\n+nisuser::::::\nnovacr01-longname:x:1001:1001::/home/n:/bin/sh\nalias:x:1001:1001::/:/bin/sh\nbroken line\n:x:5:5::/:\nbad:x:notanumber:1::/:\n";
        let n = parse_passwd(text);
        assert_eq!(n.len(), 2);
        assert_eq!(n[&0], "root");
        assert_eq!(n[&1001], "novacr01-longname");
    }

    #[test]
    fn user_resolution() {
        let names = parse_passwd("novacr01-longname:x:1001:1001::/home/n:/bin/sh\n");
        assert_eq!(
            resolve_user(Some(1001), &names, "novacr0+"),
            "novacr01-longname"
        );
        assert_eq!(
            resolve_user(Some(1001), &names, "novacr01"),
            "novacr01-longname"
        );
        assert_eq!(resolve_user(Some(2002), &names, "ldapuser+"), "2002");
        assert_eq!(resolve_user(Some(2002), &names, "ldapuser"), "ldapuser");
        assert_eq!(resolve_user(None, &names, "novacr0+"), "novacr0+");
        assert_eq!(resolve_user(None, &names, "+"), "+");
    }

    #[test]
    fn wide_ps_output() {
        let m = parse_pid_user("  4242 novacr01-longname\n 77 root\nbad line here\n\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m[&4242], "novacr01-longname");
    }

    #[test]
    fn first_line_of_stderr() {
        assert_eq!(first_line(b"\n  ps: bad option\nusage\n"), "ps: bad option");
        assert_eq!(first_line(b""), "");
        assert_eq!(first_line(&[b'x'; 300]).len(), 203);
    }

    proptest::proptest! {
        /// No text in /proc or /etc/passwd makes the readers panic.
        #[test]
        fn any_proc_text(text in "\\PC*", bytes in proptest::collection::vec(
            proptest::prelude::any::<u8>(), 0..300)) {
            let lossy = String::from_utf8_lossy(&bytes);
            for t in [text.as_str(), &lossy] {
                let _ = parse_stat_starttime(t);
                let _ = parse_status_uid(t);
                let _ = parse_btime(t);
                let _ = parse_passwd(t);
                let _ = parse_pid_user(t);
                let _ = first_line(t.as_bytes());
            }
        }
    }

    #[test]
    fn finds_ps_on_this_machine() {
        if Path::new("/bin/ps").exists() || Path::new("/usr/bin/ps").exists() {
            let ps = find_ps().unwrap();
            assert!(ps.path.ends_with("ps"), "{ps:?}");
            assert!(ps.prefix.is_empty());
        }
        assert_eq!(find_program("no-such-program-here", None), None);
    }

    /// One read of a /proc file of one record gives what reading it to the
    /// end gives.
    #[test]
    fn proc_files_in_one_read() {
        let dir = ProcDir::open(std::process::id()).expect("/proc/self");
        let mut buf = Vec::new();
        for name in [c"cmdline", c"stat", c"status"] {
            dir.read(name, &mut buf).unwrap();
            let path = format!("/proc/self/{}", name.to_str().unwrap());
            let whole = fs::read(&path).unwrap();
            // stat and status change (times, memory) between two reads:
            // compare what does not.
            match name.to_bytes() {
                b"cmdline" => assert_eq!(buf, whole, "{path}"),
                _ => assert_eq!(
                    buf.split(|&b| b == b' ').next(),
                    whole.split(|&b| b == b' ').next()
                ),
            }
        }
        assert!(dir.owner().is_some());
        assert!(
            dir.read_link(c"ns/net")
                .is_some_and(|l| l.starts_with(b"net:["))
        );
        assert!(dir.socket_inodes(None).is_some());
    }

    #[test]
    fn our_own_process() {
        let mut buf = Vec::new();
        let btime = read_file("/proc/stat", &mut buf)
            .ok()
            .and_then(|()| parse_btime(&String::from_utf8_lossy(&buf)));
        let Some(btime) = btime else { return };
        let me = fs::read_to_string("/proc/self/stat").unwrap();
        let ticks = parse_stat_starttime(&me).unwrap();
        let started = btime + ticks / CLOCK_TICKS;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // This test process started in the past, after boot.
        assert!(
            started <= now + 1 && started >= btime,
            "{started} {now} {btime}"
        );
        let uid = parse_status_uid(&fs::read_to_string("/proc/self/status").unwrap());
        assert!(uid.is_some());
    }

    /// Whether any process's command line holds `token`.
    fn process_with(token: &str) -> bool {
        let Ok(dir) = fs::read_dir("/proc") else {
            return false;
        };
        dir.flatten().any(|e| {
            fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(token))
        })
    }

    #[test]
    fn hung_ps_is_killed() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let token = format!("hung-ps-{}-{nanos}", std::process::id());
        // A ps that never answers.
        let script = format!("sleep 30; : {token}");
        let r = run_ps_program(
            Path::new("/bin/sh"),
            &["-c", &script],
            Duration::from_millis(300),
        );
        match r {
            Err(e @ LiveError::Timeout { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("did not finish within 300 ms"), "{msg}");
                assert!(msg.contains("/bin/sh"), "names the program: {msg}");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(!process_with(&token), "the hung program is gone");
    }

    #[test]
    fn ps_leaving_a_child_on_its_output_does_not_hang() {
        // ps exits, but a child of its holds stdout open past the deadline.
        let r = run_ps_program(
            Path::new("/bin/sh"),
            &["-c", "sleep 3 & echo partial"],
            Duration::from_millis(300),
        );
        assert!(matches!(r, Err(LiveError::Timeout { .. })), "{r:?}");
    }

    #[test]
    fn failing_ps_gives_its_first_stderr_line() {
        let r = run_ps_program(
            Path::new("/bin/sh"),
            &[
                "-c",
                "echo 'ps: unknown option -- q' >&2; echo usage >&2; exit 1",
            ],
            Duration::from_secs(10),
        );
        let e = r.unwrap_err();
        assert!(matches!(e, LiveError::Failed { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with("/bin/sh failed (exit status: 1)"), "{msg}");
        assert!(msg.ends_with(": ps: unknown option -- q"), "{msg}");
    }

    #[test]
    fn missing_ps_is_named() {
        let e = run_ps_program(
            Path::new("/nonexistent/ps"),
            &["auxww"],
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(e, LiveError::Spawn { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("cannot run /nonexistent/ps: "),
            "{e}"
        );
    }

    #[test]
    fn real_ps_output_has_a_header_and_us() {
        let text = run_ps(Duration::from_secs(10)).unwrap();
        let mut lines = text.lines();
        assert!(lines.next().unwrap().trim_end().ends_with("COMMAND"));
        let me = std::process::id().to_string();
        assert!(
            lines.any(|l| l.split_whitespace().take(2).any(|w| w == me)),
            "our own pid {me} is in ps"
        );
    }
}
