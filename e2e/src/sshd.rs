//! A real OpenSSH server on 127.0.0.1 and throwaway accounts to log into
//! it, for the tests that need real ssh sessions (`deploy.rs`,
//! `connections.rs`). Both need root: [`Account::create`] runs `useradd`,
//! and sshd changes to the account that logs in.
//!
//! [`Account`] is removed on drop (its processes killed, its crontab and
//! the account itself deleted); [`Sshd`] is a [`Proc`], killed on drop.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{
    Error, Proc, Result, TempDir, need_tool, read_file, run, run_ok, set_mode, tcp_open, wait_for,
    write_file,
};

const SHORT: Duration = Duration::from_secs(30);

/// A local account for a test, removed with its crontab on drop.
pub struct Account {
    pub name: String,
    pub home: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    /// Adds the account `name` with its home folder `home` (made here,
    /// owned by it) and the shell `/bin/sh`; no password login.
    pub fn create(name: &str, home: &Path) -> Result<Account> {
        // A leftover from a test that was killed: remove it first.
        let _ = run(Command::new("userdel").arg(name), SHORT);
        // Password '*': no password login, but not "locked" for sshd.
        run_ok(
            Command::new("useradd")
                .args(["--no-create-home", "--shell", "/bin/sh", "--password", "*"])
                .arg("--home-dir")
                .arg(home)
                .arg(name),
            SHORT,
        )?;
        let id = |flag: &str| -> Result<u32> {
            let out = run_ok(Command::new("id").arg(flag).arg(name), SHORT)?;
            let s = String::from_utf8_lossy(&out.stdout);
            s.trim()
                .parse()
                .map_err(|_| Error::check(format!("a number from id {flag} {name}"), s.trim()))
        };
        let mut account = Account {
            name: name.to_string(),
            home: home.to_path_buf(),
            uid: 0,
            gid: 0,
        };
        account.uid = id("-u")?;
        account.gid = id("-g")?;
        std::fs::create_dir(home).map_err(|e| Error::io("making the home folder", home, e))?;
        account.chown(home)?;
        Ok(account)
    }

    /// `chown NAME: PATH`.
    pub fn chown(&self, path: &Path) -> Result<()> {
        run_ok(
            Command::new("chown")
                .arg(format!("{}:", self.name))
                .arg(path),
            SHORT,
        )?;
        Ok(())
    }

    /// A command that runs as this account (uid, gid, no other groups),
    /// with its `HOME`, `USER` and `LOGNAME`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(program);
        cmd.uid(self.uid)
            .gid(self.gid)
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
        cmd
    }

    /// A new key pair in its home folder, owned by it: the private key's path.
    pub fn keygen(&self) -> Result<PathBuf> {
        let key = self.home.join("id_ed25519");
        keygen(&key)?;
        self.chown(&key)?;
        self.chown(&key.with_extension("pub"))?;
        Ok(key)
    }

    pub fn crontab(&self) -> Result<String> {
        let out = run(
            Command::new("crontab").args(["-l", "-u", &self.name]),
            SHORT,
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn set_crontab(&self, lines: &str, dir: &Path) -> Result<()> {
        let file = dir.join("crontab.before");
        write_file(&file, lines)?;
        run_ok(
            Command::new("crontab").args(["-u", &self.name]).arg(&file),
            SHORT,
        )?;
        Ok(())
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = run(
            Command::new("crontab").args(["-r", "-u", &self.name]),
            SHORT,
        );
        let _ = run(
            Command::new("pkill").args(["-KILL", "-u", &self.name]),
            SHORT,
        );
        let _ = run(Command::new("userdel").arg(&self.name), SHORT);
    }
}

/// ssh-keygen: a new ed25519 key pair without a passphrase.
pub fn keygen(path: &Path) -> Result<()> {
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "roctm-e2e", "-f"])
            .arg(path),
        SHORT,
    )?;
    Ok(())
}

/// The options of every ssh client in the tests: no host key questions,
/// no prompts, errors only.
pub const SSH_OPTS: [&str; 8] = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
];

/// An sshd on 127.0.0.1 at a port of its own, with a throwaway host key.
pub struct Sshd {
    pub proc: Proc,
    pub port: u16,
}

impl Sshd {
    /// Starts sshd on 127.0.0.1:`port`, letting in the accounts `users`
    /// with any of the keys whose private halves are `client_keys`; its
    /// files and log go in `tmp`.
    pub fn start(tmp: &TempDir, port: u16, users: &[&str], client_keys: &[&Path]) -> Result<Sshd> {
        let sshd = need_tool("/usr/sbin/sshd", "openssh-server")?;
        // Privilege separation needs this folder; a fresh container may lack it.
        std::fs::create_dir_all("/run/sshd").map_err(|e| Error::io("making", "/run/sshd", e))?;
        let host_key = tmp.join("ssh_host_ed25519_key");
        keygen(&host_key)?;
        let authorized = tmp.join("authorized_keys");
        let mut public = String::new();
        for key in client_keys {
            public.push_str(&read_file(&key.with_extension("pub"))?);
        }
        write_file(&authorized, &public)?;
        set_mode(&authorized, 0o644)?;
        let config = tmp.join("sshd_config");
        write_file(
            &config,
            &format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {host}\n\
                 PidFile {pid}\n\
                 AuthorizedKeysFile {authorized}\n\
                 AllowUsers {users}\n\
                 PermitRootLogin no\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 Subsystem sftp internal-sftp\n\
                 LogLevel VERBOSE\n",
                host = host_key.display(),
                pid = tmp.join("sshd.pid").display(),
                authorized = authorized.display(),
                users = users.join(" "),
            ),
        )?;
        run_ok(Command::new(&sshd).arg("-t").arg("-f").arg(&config), SHORT)?;
        let mut proc = Proc::spawn(
            "sshd",
            Command::new(&sshd).args(["-D", "-e", "-f"]).arg(&config),
            &tmp.join("sshd.log"),
        )?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_for("sshd to listen", SHORT, || {
            (tcp_open(addr) || proc.exited().is_some()).then_some(())
        })?;
        if proc.exited().is_some() {
            return Err(proc.fail("sshd exited at start"));
        }
        Ok(Sshd { proc, port })
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }
}
