//! A page kept open in headless Chromium, driven over WebDriver (Debian's
//! `chromium-driver`): unlike `--dump-dom`, which loads a page once, this
//! watches a page live, as a person leaves it open on a screen, so a test
//! can see whether it follows changes by itself.
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port (killed
//! on drop); [`Browser::open`] starts a session with a fresh profile,
//! JavaScript on or blocked (the profile's content setting, as a user
//! would set it), and loads a URL. The protocol is plain HTTP with JSON
//! bodies: the few fields needed are cut out of the text, so the crate
//! keeps no dependencies.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{Error, Proc, Result, free_tcp_port, need_tool, tcp_open, wait_for};

/// A running chromedriver.
pub struct Browser {
    addr: SocketAddr,
    _driver: Proc,
}

/// One browser window (a WebDriver session), closed on drop.
pub struct Page<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver (its log in `dir`) and waits until it answers.
    pub fn start(dir: &Path) -> Result<Browser> {
        let driver = need_tool("chromedriver", "chromium-driver")?;
        need_tool("/usr/bin/chromium", "chromium")?;
        let port = free_tcp_port()?;
        let mut proc = Proc::spawn(
            "chromedriver",
            Command::new(driver).arg(format!("--port={port}")),
            &dir.join("chromedriver.log"),
        )?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_for("chromedriver to listen", Duration::from_secs(30), || {
            (tcp_open(addr) || proc.exited().is_some()).then_some(())
        })?;
        if proc.exited().is_some() {
            return Err(proc.fail("chromedriver exited at start"));
        }
        Ok(Browser {
            addr,
            _driver: proc,
        })
    }

    /// Opens `url` in a new headless window with a profile in `profile`
    /// (an empty folder), JavaScript on or blocked.
    pub fn open(&self, url: &str, profile: &Path, js: bool) -> Result<Page<'_>> {
        let prefs = match js {
            true => "{}",
            false => r#"{"profile.default_content_setting_values.javascript":2}"#,
        };
        let caps = format!(
            r#"{{"capabilities":{{"alwaysMatch":{{"browserName":"chrome","goog:chromeOptions":{{"binary":"/usr/bin/chromium","args":["--headless","--no-sandbox","--disable-gpu","--disable-dev-shm-usage","--no-first-run","--disable-background-networking","--user-data-dir={}"],"prefs":{prefs}}}}}}}}}"#,
            profile.display()
        );
        let answer = self.call("POST", "/session", &caps)?;
        let id = field(&answer, "sessionId")
            .ok_or_else(|| Error::check("a WebDriver session", answer.clone()))?;
        let page = Page { browser: self, id };
        page.call("POST", "url", &format!(r#"{{"url":"{url}"}}"#))?;
        Ok(page)
    }

    /// One WebDriver command: the answer's body, or an error with it.
    fn call(&self, method: &str, path: &str, body: &str) -> Result<String> {
        let what = format!("WebDriver {method} {path}");
        let io = |e| Error::io(what.clone(), "chromedriver", e);
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(io)?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .map_err(io)?;
        // chromedriver keeps the connection open: read the head, then
        // Content-Length bytes.
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        let (head_len, body_len) = loop {
            let n = s.read(&mut buf).map_err(io)?;
            if n == 0 {
                return Err(Error::check(what, String::from_utf8_lossy(&raw)));
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, len);
            }
        };
        while raw.len() < head_len + body_len.min(64 << 20) {
            let n = s.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let raw = String::from_utf8_lossy(&raw);
        let (head, answer) = raw.split_at(head_len.min(raw.len()));
        match head.split_whitespace().nth(1) {
            Some("200") => Ok(answer.to_string()),
            _ => Err(Error::check(what, raw.to_string())),
        }
    }
}

impl Page<'_> {
    fn call(&self, method: &str, path: &str, body: &str) -> Result<String> {
        let path = match path {
            "" => format!("/session/{}", self.id),
            p => format!("/session/{}/{p}", self.id),
        };
        self.browser.call(method, &path, body)
    }

    /// The page's DOM as the browser holds it now, serialised, as a JSON
    /// string's contents (quotes come as `\"`).
    pub fn source(&self) -> Result<String> {
        self.call("GET", "source", "")
    }

    /// Runs `script` (a function body) in the page; the answer's `value`
    /// as JSON text. Needs JavaScript on.
    pub fn script(&self, script: &str) -> Result<String> {
        let body = format!(
            r#"{{"script":"{}","args":[]}}"#,
            script.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let answer = self.call("POST", "execute/sync", &body)?;
        Ok(answer
            .split_once("\"value\":")
            .map(|(_, v)| v.trim_end_matches('}').trim().to_string())
            .unwrap_or(answer))
    }
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", "");
    }
}

/// The string value of `"name":"..."` in a JSON text (no escapes in it).
fn field(json: &str, name: &str) -> Option<String> {
    let rest = json.split(&format!("\"{name}\":\"")).nth(1)?;
    Some(rest.split('"').next()?.to_string())
}
