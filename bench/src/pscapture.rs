//! A seeded, realistic `ps auxww` capture of a busy gateway: `procs` process
//! lines of which some ssh (and autossh) processes hold exactly `forwards`
//! port forwards between them.
//!
//! The mix is what a gateway's `ps auxww` shows: kernel threads
//! (`[kworker/0:1-events]`), systemd and daemons, sshd and its per-session
//! children (`sshd: novacr05@pts/3`), shells, editors, `grep ssh`, scp,
//! ssh-agent, interactive ssh sessions with no forwards, a few very long
//! command lines (a Java class path, as `ww` prints it whole), and the
//! tunnels, in the spellings OpenSSH accepts: `-L 5901:h:5901`,
//! `-fNL 5901:h:5901`, `-L5901:h:5901 -l user`, `-o LocalForward 5901 h:5901`,
//! `-R`, `-D`, a bracketed IPv6 bind, `-p`, `-J`, and autossh with the ssh
//! it started (autossh's forwards are counted once, from the child).
//!
//! The columns are laid out as procps 3.3/4 prints them, with user names
//! longer than 8 characters cut to `name+`.

use std::fmt::Write as _;

use crate::rng::Rng;

/// What was generated, for checking a parser against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    pub text: String,
    /// Process lines (without the header).
    pub procs: usize,
    /// Forwards a correct parser reports (autossh's counted once).
    pub forwards: usize,
}

struct Line {
    user: &'static str,
    command: String,
    /// Kernel thread: no memory, `?` tty.
    kernel: bool,
}

const USERS: [&str; 8] = [
    "novacr05",
    "novacr06",
    "novadaq",
    "novaoperator",
    "rocshift1",
    "rocshift2",
    "dunepro",
    "root",
];

const HOSTS: [&str; 6] = [
    "novadaq-far-master-01",
    "novadaq-far-master-02",
    "novadaq-near-master-01",
    "novadaq-far-dcm-03",
    "novadaq-near-evb-02.fnal.gov",
    "10.20.30.41",
];

const DESTS: [&str; 4] = [
    "novadaq-far-gateway-01",
    "novadaq-near-gateway-01",
    "novadaq-far-gateway-01.fnal.gov",
    "localhost",
];

/// Generates the capture. `forwards` may be 0; `procs` grows when the
/// forwards need more ssh lines than it leaves room for.
pub fn generate(seed: u64, procs: usize, forwards: usize) -> Capture {
    let mut rng = Rng::fork(seed, 0x5053);
    let mut lines: Vec<Vec<Line>> = Vec::new();
    let mut left = forwards;
    let mut port = 5900u64;
    while left > 0 {
        let k = (rng.range(1, 3) as usize).min(left);
        left -= k;
        lines.push(tunnel_lines(&mut rng, k, &mut port));
    }
    let used: usize = lines.iter().map(Vec::len).sum();
    for i in 0..procs.saturating_sub(used) {
        lines.push(vec![other_line(&mut rng, i)]);
    }
    // ps sorts by pid; tunnels are spread among the rest. An autossh line
    // and its ssh child stay together, parent first.
    rng.shuffle(&mut lines);
    let mut text = String::with_capacity(procs * 120);
    text.push_str("USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n");
    let mut pid = 1u64;
    let mut count = 0;
    for group in &lines {
        for line in group {
            write_line(&mut rng, &mut text, pid, line);
            pid += rng.range(1, 4);
            count += 1;
        }
    }
    Capture {
        text,
        procs: count,
        forwards,
    }
}

fn write_line(rng: &mut Rng, out: &mut String, pid: u64, line: &Line) {
    let user = if line.user.len() > 8 {
        format!("{}+", &line.user[..7])
    } else {
        line.user.to_string()
    };
    let (cpu, mem, vsz, rss, tty, stat) = if line.kernel {
        let stat = *rng.pick(&["I<", "S", "I", "S<"]);
        (0, 0, 0, 0, "?".to_string(), stat)
    } else {
        let tty = if rng.one_in(4) {
            format!("pts/{}", rng.below(12))
        } else {
            "?".to_string()
        };
        (
            rng.below(30),
            rng.below(20),
            rng.range(4_000, 2_500_000),
            rng.range(800, 400_000),
            tty,
            *rng.pick(&["Ss", "S", "Sl", "Ssl", "R+", "S+", "Ss+"]),
        )
    };
    let start = match rng.below(4) {
        0 => format!("{:02}:{:02}", rng.below(24), rng.below(60)),
        1 => format!(
            "{}{:02}",
            rng.pick(&["Jan", "Mar", "Nov", "Dec"]),
            rng.range(1, 28)
        ),
        2 => "2025".to_string(),
        _ => format!("Nov{:02}", rng.range(1, 28)),
    };
    let time = format!("{}:{:02}", rng.below(300), rng.below(60));
    let _ = writeln!(
        out,
        "{user:<8} {pid:>7} {:>2}.{} {:>2}.{} {vsz:>6} {rss:>5} {tty:<8} {stat:<4} {start:>5} {time:>6} {}",
        cpu / 10,
        cpu % 10,
        mem / 10,
        mem % 10,
        line.command
    );
}

/// One ssh process holding `k` forwards (or an autossh line and its child).
fn tunnel_lines(rng: &mut Rng, k: usize, port: &mut u64) -> Vec<Line> {
    let user = *rng.pick(&USERS);
    let dest = *rng.pick(&DESTS);
    let mut specs: Vec<String> = Vec::new();
    let style = rng.below(10);
    for _ in 0..k {
        *port += 1;
        let p = 5900 + *port % 100 + 1000 * (*port / 100 % 50);
        let host = *rng.pick(&HOSTS);
        let tp = 5900 + rng.below(100);
        let spec = match (style, rng.below(8)) {
            (_, 0) => format!("-R {p}:localhost:22"),
            (_, 1) => format!("-D {p}"),
            (_, 2) => format!("-L [::1]:{p}:{host}:{tp}"),
            (_, 3) => format!("-L 127.0.0.1:{p}:{host}:{tp}"),
            (0..=2, _) => format!("-L {p}:{host}:{tp}"),
            (3 | 4, _) => format!("-L{p}:{host}:{tp}"),
            (5, _) => format!("-o LocalForward {p} {host}:{tp}"),
            _ => format!("-L {p}:{host}:{tp}"),
        };
        specs.push(spec);
    }
    let fw = specs.join(" ");
    let ssh = *rng.pick(&["ssh", "/usr/bin/ssh", "ssh", "/usr/local/bin/ssh"]);
    let at = if rng.one_in(2) {
        format!("{user}@{dest}")
    } else {
        dest.to_string()
    };
    let line = |command: String| Line {
        user,
        command,
        kernel: false,
    };
    match style {
        0 => vec![line(format!("{ssh} -N {fw} {at}"))],
        1 if k == 1 && specs[0].starts_with("-L ") => {
            // Bundled flags: -fNL 5901:h:5901.
            let spec = specs[0].trim_start_matches("-L ");
            vec![line(format!("{ssh} -fNL {spec} {at}"))]
        }
        2 => vec![line(format!(
            "{ssh} -p 2222 -o ServerAliveInterval=30 {fw} -N {at}"
        ))],
        3 => vec![line(format!("{ssh} {fw} -l {user} -N {dest}"))],
        4 => vec![line(format!(
            "{ssh} -J rocshift@novadaq-far-gateway-01 -N {fw} {at}"
        ))],
        5 => vec![line(format!("{ssh} -q -T {fw} {at}"))],
        6 | 7 => vec![
            line(format!("/usr/bin/autossh -M 0 -N {fw} {at}")),
            line(format!("/usr/bin/ssh -N {fw} {at}")),
        ],
        _ => vec![line(format!("{ssh} -f -N -C {fw} {at}"))],
    }
}

/// Anything but a tunnel.
fn other_line(rng: &mut Rng, i: usize) -> Line {
    let sys = |command: String| Line {
        user: "root",
        command,
        kernel: false,
    };
    let user = *rng.pick(&USERS);
    let mine = |command: String| Line {
        user,
        command,
        kernel: false,
    };
    match rng.below(100) {
        0..=34 => {
            let name = match rng.below(8) {
                0 => format!("kworker/{}:{}-events", rng.below(2), rng.below(4)),
                1 => format!("kworker/u{}:{}", rng.range(4, 8), rng.below(9)),
                2 => format!("ksoftirqd/{}", rng.below(2)),
                3 => format!("migration/{}", rng.below(2)),
                4 => "rcu_gp".to_string(),
                5 => "jbd2/vda1-8".to_string(),
                6 => format!("kworker/{}:{}H-kblockd", rng.below(2), rng.below(3)),
                _ => format!("xfs-buf/dm-{}", rng.below(3)),
            };
            Line {
                user: "root",
                command: format!("[{name}]"),
                kernel: true,
            }
        }
        35..=44 => sys((*rng.pick(&[
            "/usr/lib/systemd/systemd --switched-root --system --deserialize 31",
            "/usr/lib/systemd/systemd-journald",
            "/usr/lib/systemd/systemd-udevd",
            "/usr/sbin/crond -n",
            "/usr/sbin/rsyslogd -n",
            "/usr/sbin/chronyd",
            "/usr/sbin/sshd -D -oCiphers=aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
            "/sbin/agetty -o -p -- \\u --noclear tty1 linux",
            "/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile",
        ]))
        .to_string()),
        45..=59 => {
            let tty = rng.below(12);
            match rng.below(3) {
                0 => sys(format!("sshd: {user} [priv]")),
                1 => mine(format!("sshd: {user}@pts/{tty}")),
                _ => mine("sshd: {user}@notty".replace("{user}", user)),
            }
        }
        60..=74 => mine(
            (*rng.pick(&[
                "-bash",
                "/bin/bash",
                "bash --login",
                "tmux new -s shift",
                "vim /home/nova/shift-notes.txt",
                "top -d 5",
                "less /var/log/messages",
                "sleep 3600",
                "/usr/bin/python3 /opt/roc/monitor.py --interval 60",
            ]))
            .to_string(),
        ),
        75..=79 => mine(
            (*rng.pick(&[
                "grep --color=auto ssh",
                "ssh-agent -s",
                "/usr/libexec/openssh/sftp-server",
                "scp -t /tmp/run-plan.txt",
                "sftp novadaq@novadaq-far-gateway-01",
                "/usr/bin/ssh-agent /bin/sh -c exec -l /bin/bash -c \"startxfce4\"",
            ]))
            .to_string(),
        ),
        80..=89 => {
            // Interactive ssh sessions: ssh, but not tunnels.
            let host = *rng.pick(&HOSTS);
            match rng.below(3) {
                0 => mine(format!("ssh {host}")),
                1 => mine(format!("ssh -Y {user}@{host}")),
                _ => mine(format!("/usr/bin/ssh -x -oForwardAgent=no {host} uptime")),
            }
        }
        90..=94 => {
            // Very long: ps auxww prints all of it.
            let mut cp = String::new();
            for j in 0..rng.range(20, 60) {
                let _ = write!(cp, "/opt/roc/lib/component-{i}-{j}.jar:");
            }
            mine(format!(
                "/usr/lib/jvm/java-17/bin/java -Xmx512m -cp {cp}/opt/roc/classes gov.fnal.roc.Viewer --display :{}",
                rng.below(20)
            ))
        }
        _ => mine(format!(
            "Xvnc :{} -geometry 1920x1080 -depth 24 -rfbauth /home/{user}/.vnc/passwd -rfbport {}",
            rng.below(40),
            5900 + rng.below(40)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_capture() {
        assert_eq!(generate(1, 200, 20), generate(1, 200, 20));
        assert_ne!(generate(1, 200, 20).text, generate(2, 200, 20).text);
    }

    #[test]
    fn sizes_are_as_asked() {
        let c = generate(42, 1000, 100);
        assert_eq!(c.procs, 1000);
        assert_eq!(c.text.lines().count(), 1001);
        assert_eq!(c.forwards, 100);
    }

    #[test]
    fn the_parser_finds_every_forward() {
        for seed in 0..5 {
            let c = generate(seed, 2000, 200);
            let out = gateway_client::ps::parse_ps(&c.text);
            assert_eq!(out.tunnels.len(), c.forwards, "seed {seed}");
            assert_eq!(out.skipped, 0, "seed {seed}");
            assert_eq!(out.bad_forwards, 0, "seed {seed}");
        }
    }
}
