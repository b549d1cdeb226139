//! Running an operator's shell command (`--on-collect`, `--notify`) with a
//! time limit.
//!
//! The command runs as `sh -c CMD` in a process group of its own, with stdin
//! closed and stdout/stderr inherited. When it outlives its limit the whole
//! group is killed (so `sh -c 'sleep 999 | cat'` does not leave orphans
//! behind), then `sh` itself is killed and reaped. Callers run commands on
//! their own threads: nothing here is ever on the ingest path.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with `env` added; `Err` says how it failed, in a few words.
pub(crate) fn run(cmd: &str, env: &[(&str, String)], limit: Duration) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{status}")),
            Ok(None) if Instant::now() >= deadline => {
                kill_group(child.id());
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after {} s", limit.as_secs()));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cannot wait for it: {e}"));
            }
        }
    }
}

/// Kills the process group `pgid` (best effort; needs procps' kill).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_failure_and_time_limit() {
        assert_eq!(
            run(
                "test \"$X\" = 1",
                &[("X", "1".into())],
                Duration::from_secs(10)
            ),
            Ok(())
        );
        assert!(
            run("exit 3", &[], Duration::from_secs(10))
                .unwrap_err()
                .contains('3')
        );
        let e = run("sleep 30 | cat", &[], Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("killed"), "{e}");
    }
}
