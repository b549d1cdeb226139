//! Live mode: the tunnels of this machine, from the real `ps` and `/proc`.
//!
//! [`collect`] runs `ps auxww` under a time limit ([`scan_ps`]), parses its
//! output as it comes through the pipe with the same parser as a capture
//! ([`crate::ps`]), and completes each record from `/proc`, which a capture
//! cannot give:
//!
//! - `user`, in full: procps cuts long names to `name+` and busybox cuts
//!   them silently, so the owner is taken from the real uid in
//!   `/proc/PID/status`, named by `/etc/passwd` (read directly: no libc).
//!   An account that `/etc/passwd` does not know (LDAP, sssd) is asked of a
//!   second `ps -o pid=,user:64=` for the cut names only; failing that a cut
//!   name becomes the numeric uid, and an uncut one stays as ps printed it.
//! - `started`, Unix seconds, from the start time in `/proc/PID/stat` (clock
//!   ticks since boot) and the boot time `btime` in `/proc/stat`.
//! - `listening` and, with `--probe`, `vnc`: see [`crate::health`].
//!
//! A process that has gone, or whose PID now belongs to something that is
//! not ssh (ps and `/proc` are read at different moments), keeps what ps
//! said, with `started` unknown and its health unknown. Without `/proc`
//! (another system) the same holds for every record: live mode still works,
//! it only knows less.
//!
//! A hung `ps` (an NFS mount in a process's cwd can do that) never hangs the
//! cron job: it is killed when the time limit passes, and its output is read
//! by threads that the caller never waits for beyond that limit.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::health;
use crate::lines;
use crate::ps;
use crate::ssh_args;
use crate::tunnel::{Health, Tunnel};

/// The arguments given to `ps`: every process, user-oriented columns,
/// unlimited width. busybox `ps` ignores them and prints its own layout,
/// which the parser reads as well.
pub const PS_ARGS: &[&str] = &["auxww"];

/// The most `ps` output read (a machine with a million processes is not a
/// gateway); beyond it, live mode fails rather than grow without bound.
pub const MAX_PS_OUTPUT: usize = 64 << 20;

/// The most of `ps`'s stderr kept for an error message.
const MAX_STDERR: usize = 64 << 10;

/// Clock ticks per second in `/proc/PID/stat`. This is Linux's `USER_HZ`,
/// which is part of the kernel's ABI and is 100 on every architecture
/// whatever the kernel's internal `HZ` (that is what `sysconf(_SC_CLK_TCK)`
/// returns); using the constant keeps the client free of libc bindings.
pub const CLOCK_TICKS: u64 = 100;

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

/// Runs `ps auxww` (see [`find_ps`]) and returns what it printed.
pub fn run_ps(timeout: Duration) -> Result<String, LiveError> {
    let ps = find_ps()?;
    let mut args = ps.prefix.clone();
    args.extend_from_slice(PS_ARGS);
    run_ps_program(&ps.path, &args, timeout)
}

/// Runs `ps auxww` (see [`find_ps`]) and parses what it prints as it comes
/// through the pipe, a buffer at a time ([`ps::PsReader`]): only the
/// ssh lines are kept, not the whole output.
pub fn scan_ps(timeout: Duration) -> Result<ps::PsReader, LiveError> {
    let ps = find_ps()?;
    let mut args = ps.prefix.clone();
    args.extend_from_slice(PS_ARGS);
    run_program(&ps.path, &args, timeout, |out| {
        ps::PsReader::read(out, lines::CHUNK)
    })
}

/// What a reading thread sends: the result of reading, and whether the
/// output went past the limit.
type ReadResult<T> = io::Result<(T, bool)>;

/// Runs `read` on at most `limit` bytes of `r` (plus one, to notice more)
/// on a thread; the result comes through the returned channel.
fn read_in_thread<R, T>(
    r: R,
    limit: usize,
    read: impl FnOnce(&mut io::Take<R>) -> io::Result<T> + Send + 'static,
) -> mpsc::Receiver<ReadResult<T>>
where
    R: Read + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut limited = r.take(limit as u64 + 1);
        let res = read(&mut limited).map(|v| (v, limited.limit() == 0));
        let _ = tx.send(res);
    });
    rx
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
pub fn run_ps_program(
    program: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<String, LiveError> {
    let stdout = run_program(program, args, timeout, read_all)?;
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// Runs `program args...` as [`run_ps_program`] does, with its stdout
/// going to `read` (on a thread, as it comes) instead of into memory.
fn run_program<T: Send + 'static>(
    program: &Path,
    args: &[&str],
    timeout: Duration,
    read: impl FnOnce(&mut io::Take<ChildStdout>) -> io::Result<T> + Send + 'static,
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
        .spawn()
        .map_err(|source| LiveError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    let out = child
        .stdout
        .take()
        .map(|o| read_in_thread(o, MAX_PS_OUTPUT, read));
    let err = child
        .stderr
        .take()
        .map(|e| read_in_thread(e, MAX_STDERR, read_all));
    let io_err = |source| LiveError::Io {
        program: program.to_path_buf(),
        source,
    };
    let timed_out = || LiveError::Timeout {
        program: program.to_path_buf(),
        timeout,
    };

    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io_err(e));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(timed_out());
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    };

    // The output threads end when the pipes close, which is at the exit of
    // ps unless it left children behind holding them.
    fn collect<T>(rx: mpsc::Receiver<ReadResult<T>>, deadline: Instant) -> Option<ReadResult<T>> {
        // A little grace: ps may exit just at the deadline.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        rx.recv_timeout(left).ok()
    }
    let (stdout, too_large) = match out.map(|rx| collect(rx, deadline)) {
        // stdout is always piped.
        None => return Err(io_err(io::ErrorKind::BrokenPipe.into())),
        Some(None) => return Err(timed_out()),
        Some(Some(r)) => r.map_err(io_err)?,
    };
    // Checked first: when we stop reading, ps dies of SIGPIPE.
    if too_large {
        return Err(LiveError::TooLarge {
            program: program.to_path_buf(),
            limit: MAX_PS_OUTPUT,
        });
    }
    if !status.success() {
        let stderr = match err.and_then(|rx| collect(rx, deadline)) {
            Some(Ok((bytes, _))) => bytes,
            _ => Vec::new(),
        };
        return Err(LiveError::Failed {
            program: program.to_path_buf(),
            status,
            stderr: first_line(&stderr),
        });
    }
    Ok(stdout)
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

/// The tunnels of this machine, completed from `/proc` (see the module
/// doc), with what the `ps` pass skipped. Each ssh process's exact argv is
/// read from `/proc` where possible ([`exact_argv`]). `probe` also probes the
/// VNC forwards ([`health::probe_vnc`]).
pub fn collect(timeout: Duration, probe: bool) -> Result<ps::PsOutcome, LiveError> {
    let deadline = Instant::now() + timeout;
    let mut outcome = scan_ps(timeout)?.finish_with(exact_argv);
    let mut tunnels = std::mem::take(&mut outcome.tunnels);
    // A second ps (for names /etc/passwd lacks) gets what is left of the limit.
    complete(
        &mut tunnels,
        deadline.saturating_duration_since(Instant::now()),
    );
    if probe {
        health::probe_vnc(&mut tunnels);
    }
    outcome.tunnels = tunnels;
    Ok(outcome)
}

/// The exact argv of `pid` from `/proc/PID/cmdline`, when it is the process
/// `ps` showed: its arguments joined with spaces give `command` exactly (so
/// neither a reused pid nor a line `ps` altered is read by mistake).
pub fn exact_argv(pid: u32, command: &str) -> Option<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    argv_matching(&bytes, command)
}

/// Splits NUL-separated `cmdline` bytes into arguments, if they join with
/// spaces into `command`.
pub fn argv_matching(cmdline: &[u8], command: &str) -> Option<Vec<String>> {
    let text = std::str::from_utf8(cmdline.strip_suffix(b"\0").unwrap_or(cmdline)).ok()?;
    if text.is_empty() || text.replace('\0', " ") != command {
        return None;
    }
    Some(text.split('\0').map(str::to_string).collect())
}

/// What `/proc` tells about one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcInfo {
    /// Whether the PID still runs ssh or autossh (not gone, not reused).
    pub is_ssh: bool,
    /// Real uid.
    pub uid: Option<u32>,
    /// Start, Unix seconds.
    pub started: Option<u64>,
}

/// Reads `/proc/PID` (`btime`: boot time from `/proc/stat`).
pub fn proc_info(pid: u32, btime: Option<u64>) -> ProcInfo {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let is_ssh = fs::read(dir.join("cmdline")).is_ok_and(|c| {
        let joined = String::from_utf8_lossy(&c).replace('\0', " ");
        ssh_args::program_of(&joined).is_some()
    });
    if !is_ssh {
        return ProcInfo::default();
    }
    let uid = fs::read_to_string(dir.join("status"))
        .ok()
        .and_then(|s| parse_status_uid(&s));
    let started = fs::read_to_string(dir.join("stat"))
        .ok()
        .and_then(|s| parse_stat_starttime(&s))
        .zip(btime)
        .map(|(ticks, boot)| boot + ticks / CLOCK_TICKS);
    ProcInfo {
        is_ssh,
        uid,
        started,
    }
}

/// The real uid from `/proc/PID/status` (`Uid:\treal\teffective\tsaved\tfs`).
pub fn parse_status_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|u| u.parse().ok())
}

/// Field 22 of `/proc/PID/stat`, `starttime`, in clock ticks since boot.
/// Field 2 is the command name in parentheses, which may itself hold spaces
/// and `)`, so fields are counted from the last `)`.
pub fn parse_stat_starttime(stat: &str) -> Option<u64> {
    let (_, after) = stat.rsplit_once(')')?;
    // After ")": field 3 (state) is the first word, so field 22 is the 20th.
    after.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

/// `btime` (boot time, Unix seconds) from `/proc/stat`.
pub fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// uid to account name from `/etc/passwd` text; the first entry of a uid
/// wins, as for `getpwuid`. Comments and NIS `+`/`-` lines are skipped.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
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
pub fn resolve_user(uid: Option<u32>, names: &HashMap<u32, String>, ps_user: &str) -> String {
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
pub fn parse_pid_user(text: &str) -> HashMap<u32, String> {
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

/// Completes records made from the live `ps`: full user names, start
/// times, and whether their forwards listen. `timeout` bounds the second
/// `ps` asked for names `/etc/passwd` lacks.
pub fn complete(tunnels: &mut [Tunnel], timeout: Duration) {
    if tunnels.is_empty() {
        return;
    }
    let btime = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_btime(&s));
    let names = fs::read_to_string("/etc/passwd")
        .map(|s| parse_passwd(&s))
        .unwrap_or_default();
    let mut infos: HashMap<u32, ProcInfo> = HashMap::new();
    for t in tunnels.iter() {
        infos
            .entry(t.pid)
            .or_insert_with(|| proc_info(t.pid, btime));
    }

    // Names still cut after /etc/passwd: ask ps for a wider column.
    let mut unresolved: Vec<u32> = tunnels
        .iter()
        .filter(|t| {
            let uid = infos[&t.pid].uid;
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
        let info = &infos[&t.pid];
        t.user = match wide.get(&t.pid) {
            Some(name) if !is_cut(name) => name.clone(),
            _ => resolve_user(info.uid, &names, &t.user),
        };
        t.started = info.started;
    }
    health::check_listening(tunnels);
    for t in tunnels.iter_mut() {
        if !infos[&t.pid].is_ssh {
            t.listening = Health::Unknown;
        }
    }
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

    #[test]
    fn our_own_process() {
        let btime = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_btime(&s));
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
}
