//! A real SMTP server for the notifier tests: `smtp_server.py` beside this
//! file (PyPI's aiosmtpd) on a loopback port, writing every message it
//! accepts to a directory, and the messages read back decoded.
//!
//! The port is reserved for the server's whole life by a second, holding
//! process (bound with `SO_REUSEPORT`, never listening), so [`SmtpServer::stop`]
//! makes lapse's connections fail with "connection refused" and
//! [`SmtpServer::restart`] listens on the same port again — lapse is
//! configured once. Needs `python3` with aiosmtpd (`pip install aiosmtpd`;
//! CI installs it); without them the tests fail, they never skip.

use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");
const INSTALL_HINT: &str = "the notifier tests need python3 with aiosmtpd: run `pip install aiosmtpd` \
     (CI's .ci/run and scripts/test install it)";

/// One received message: the envelope, the raw text, and what a mail
/// reader would show (RFC 2047 subject decoded, transfer encodings undone).
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    /// The envelope sender (`MAIL FROM`).
    #[serde(rename = "mail_from")]
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    #[serde(rename = "rcpt_tos")]
    pub to: Vec<String>,
    pub subject: String,
    /// The text/plain body, if there is one.
    pub text: Option<String>,
    pub html: Option<String>,
    /// The whole message as it came over the wire.
    #[serde(rename = "data")]
    pub raw: String,
    /// The user that authenticated, if the server required AUTH.
    pub auth_user: Option<String>,
    /// Header names and decoded values, in order.
    pub headers: Vec<(String, String)>,
    /// MIME types of every part, the outermost first.
    pub content_types: Vec<String>,
    /// Unix seconds the server accepted the message.
    pub received_at: f64,
}

impl Mail {
    /// The text/plain body; panics if the message has none.
    #[track_caller]
    pub fn text(&self) -> &str {
        self.text
            .as_deref()
            .unwrap_or_else(|| panic!("no text/plain part in\n{}", self.raw))
    }

    /// The text/html body; panics if the message has none.
    #[track_caller]
    pub fn html(&self) -> &str {
        self.html
            .as_deref()
            .unwrap_or_else(|| panic!("no text/html part in\n{}", self.raw))
    }

    /// The first header called `name` (any case), decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Everything a reader could see: subject, headers, both bodies and
    /// the raw text (which still holds anything base64 or QP would hide).
    pub fn everything(&self) -> String {
        let headers: String = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect();
        format!(
            "{headers}\n{}\n{}\n{}\n{}",
            self.subject,
            self.text.as_deref().unwrap_or(""),
            self.html.as_deref().unwrap_or(""),
            self.raw
        )
    }
}

/// The fields `smtp_server.py` writes; a parse error replaces the decoded ones.
#[derive(Deserialize)]
struct Record {
    parse_error: Option<String>,
    data: String,
}

/// aiosmtpd on `127.0.0.1:port`; both processes are killed on drop.
pub struct SmtpServer {
    pub port: u16,
    dir: PathBuf,
    auth: Option<(String, String)>,
    /// Recipients refused for good at `RCPT TO`, each with its code (550, 551, 553).
    reject: Vec<(String, u16)>,
    /// How many `RCPT TO`s the next start answers with a temporary 451.
    fail_first: usize,
    /// Holds the port while the server is stopped; its stdin closing ends it.
    holder: Child,
    server: Option<(Child, ChildStdin)>,
}

impl SmtpServer {
    /// Starts a server that takes mail without AUTH and writes it to `dir`.
    pub fn start(dir: impl Into<PathBuf>) -> SmtpServer {
        SmtpServer::launch(dir.into(), None)
    }

    /// Starts a server that takes mail only after AUTH PLAIN or LOGIN as
    /// `user` with `password`.
    pub fn start_with_auth(dir: impl Into<PathBuf>, user: &str, password: &str) -> SmtpServer {
        SmtpServer::launch(dir.into(), Some((user.into(), password.into())))
    }

    fn launch(dir: PathBuf, auth: Option<(String, String)>) -> SmtpServer {
        std::fs::create_dir_all(&dir).expect("create the mail directory");
        let mut holder = python()
            .arg("--hold")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run python3: {e}\n{INSTALL_HINT}"));
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("holder stdout"))
            .read_line(&mut line)
            .expect("read the reserved port");
        let Ok(port) = line.trim().parse() else {
            let _ = holder.kill();
            let out = holder.wait_with_output().expect("wait for python3");
            panic!(
                "smtp_server.py --hold printed no port\n--- stderr ---\n{}\n{INSTALL_HINT}",
                String::from_utf8_lossy(&out.stderr)
            )
        };
        let mut smtp = SmtpServer {
            port,
            dir,
            auth,
            reject: Vec::new(),
            fail_first: 0,
            holder,
            server: None,
        };
        smtp.restart();
        smtp
    }

    /// The directory messages are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server at once, open connections and all; the port stays
    /// reserved, so connections to it are refused until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some((mut child, _stdin)) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server on its port (again) and waits until it accepts
    /// connections; messages keep their numbering.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the SMTP server log");
        let mut cmd = python();
        cmd.args(["--port", &self.port.to_string(), "--out"])
            .arg(&self.dir);
        if let Some((user, password)) = &self.auth {
            cmd.args(["--user", user, "--password", password]);
        }
        for (rcpt, code) in &self.reject {
            cmd.args(["--reject", &format!("{rcpt}={code}")]);
        }
        // Only this start fails its first attempts: a later restart takes mail at once.
        let fail_first = std::mem::take(&mut self.fail_first);
        cmd.args(["--fail-first", &fail_first.to_string()]);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("run python3: {e}\n{INSTALL_HINT}"));
        let stdin = child.stdin.take().expect("server stdin");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("poll smtp_server.py") {
                panic!(
                    "smtp_server.py exited ({status}) before listening\n--- log ---\n{}\n{INSTALL_HINT}",
                    self.log()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            if started.elapsed() > super::DEADLINE {
                let _ = child.kill();
                panic!(
                    "smtp_server.py not listening on {} after {:?}\n--- log ---\n{}",
                    self.address(),
                    super::DEADLINE,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.server = Some((child, stdin));
    }

    /// Restarts the server refusing `recipients` (none: taking every one
    /// again) with a permanent error, as a server does an unknown user.
    pub fn reject(&mut self, recipients: &[&str]) {
        let with_code: Vec<(&str, u16)> = recipients.iter().map(|r| (*r, 550)).collect();
        self.refuse(&with_code);
    }

    /// Restarts the server refusing each recipient for good with its own
    /// code: 550 (no such mailbox), 551 (user not local) or 553 (mailbox
    /// name not allowed).
    pub fn refuse(&mut self, recipients: &[(&str, u16)]) {
        self.reject = recipients
            .iter()
            .map(|(r, c)| (r.to_string(), *c))
            .collect();
        self.restart();
    }

    /// Restarts the server answering its first `n` `RCPT TO`s (over all
    /// connections) with a temporary 451; after them it takes mail as usual.
    pub fn fail_first(&mut self, n: usize) {
        self.fail_first = n;
        self.restart();
    }

    /// Restarts the server requiring AUTH as `user` with `password`.
    pub fn require_auth(&mut self, user: &str, password: &str) {
        self.auth = Some((user.into(), password.into()));
        self.restart();
    }

    fn log_path(&self) -> PathBuf {
        let name = format!("smtp-server-{}.log", self.port);
        self.dir.parent().unwrap_or(&self.dir).join(name)
    }

    /// What the server process logged (aiosmtpd's warnings, tracebacks).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Mail> {
        let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .expect("read the mail directory")
            .map(|e| e.expect("a directory entry").path())
            .filter_map(|p| {
                let n = p
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((n, p))
            })
            .collect();
        numbered.sort();
        numbered.iter().map(|(_, p)| read_mail(p)).collect()
    }

    /// Waits until at least `n` messages have arrived, for at most
    /// `deadline`, and returns all of them; panics with what did arrive.
    #[track_caller]
    pub fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Mail> {
        let started = Instant::now();
        loop {
            let mails = self.messages();
            if mails.len() >= n {
                return mails;
            }
            if started.elapsed() > deadline {
                panic!(
                    "expected {n} message(s) within {deadline:?}, got {}:\n{}",
                    mails.len(),
                    summary(&mails)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that after `wait` there are still exactly `n` messages.
    #[track_caller]
    pub fn assert_stays(&self, n: usize, wait: Duration) -> Vec<Mail> {
        std::thread::sleep(wait);
        let mails = self.messages();
        assert_eq!(
            mails.len(),
            n,
            "expected exactly {n} message(s) after waiting {wait:?}:\n{}",
            summary(&mails)
        );
        mails
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn python() -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT);
    cmd
}

fn read_mail(path: &Path) -> Mail {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let record: Record = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not a message record: {e}", path.display()));
    if let Some(error) = record.parse_error {
        panic!(
            "{}: Python's email package cannot parse the message: {error}\n{}",
            path.display(),
            record.data
        );
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One line per message: recipients and subject.
fn summary(mails: &[Mail]) -> String {
    mails
        .iter()
        .enumerate()
        .map(|(i, m)| format!("  {}. to {:?}: {}\n", i + 1, m.to, m.subject))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use std::io::{Read, Write};

    /// A minimal SMTP client: one message per connection. Err names the
    /// reply that was not the one expected.
    fn send(
        port: u16,
        auth: Option<(&str, &str)>,
        from: &str,
        to: &[&str],
        message: &str,
    ) -> Result<(), String> {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        reply(&mut conn, "", "220")?;
        reply(&mut conn, "EHLO test\r\n", "250")?;
        if let Some((user, password)) = auth {
            let token = STANDARD.encode(format!("\0{user}\0{password}"));
            reply(&mut conn, &format!("AUTH PLAIN {token}\r\n"), "235")?;
        }
        reply(&mut conn, &format!("MAIL FROM:<{from}>\r\n"), "250")?;
        for rcpt in to {
            reply(&mut conn, &format!("RCPT TO:<{rcpt}>\r\n"), "250")?;
        }
        reply(&mut conn, "DATA\r\n", "354")?;
        let stuffed: String = message
            .strip_suffix("\r\n")
            .unwrap_or(message)
            .split("\r\n")
            .map(|l| match l.starts_with('.') {
                true => format!(".{l}\r\n"),
                false => format!("{l}\r\n"),
            })
            .collect();
        reply(&mut conn, &format!("{stuffed}.\r\n"), "250")?;
        reply(&mut conn, "QUIT\r\n", "221")
    }

    /// Sends `command` (if any) and reads one whole reply, which must start with `code`.
    fn reply(conn: &mut TcpStream, command: &str, code: &str) -> Result<(), String> {
        conn.write_all(command.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        // A reply ends with a line whose code is followed by a space.
        while !(text.ends_with("\r\n")
            && text
                .lines()
                .last()
                .is_some_and(|l| l.get(3..4) == Some(" ")))
        {
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("connection closed after {text:?}"));
            }
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        match text.starts_with(code) {
            true => Ok(()),
            false => Err(format!("{command:?}: expected {code}, got {text:?}")),
        }
    }

    /// What lettre sends: multipart/alternative, quoted-printable text,
    /// base64 HTML, an RFC 2047 subject.
    const MULTIPART: &str = "From: lapse@example.com\r\n\
        To: ops@example.com, web@example.com\r\n\
        Subject: =?utf-8?b?Q2VydGlmaWNhdGUg4oCcd2ViLmV4YW1wbGXigJ0gZXhwaXJlcw==?= in 9d\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
        \r\n\
        --b1\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\
        \r\n\
        Time left =E2=80=94 9d 23h, a long line that goes on and on and on and =\r\n\
        is joined again\r\n\
        .leading dot\r\n\
        --b1\r\n\
        Content-Type: text/html; charset=utf-8\r\n\
        Content-Transfer-Encoding: base64\r\n\
        \r\n\
        PHRkPndlYi5leGFtcGxlPC90ZD4=\r\n\
        --b1--\r\n";

    #[test]
    fn receives_decodes_and_numbers_messages_across_a_restart() {
        let scratch = tempfile::tempdir().unwrap();
        let mut smtp = SmtpServer::start(scratch.path().join("mail"));
        send(
            smtp.port,
            None,
            "lapse@example.com",
            &["ops@example.com", "web@example.com"],
            MULTIPART,
        )
        .unwrap();
        let mails = smtp.wait_for(1, super::super::DEADLINE);
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert_eq!(mail.from, "lapse@example.com");
        assert_eq!(mail.to, ["ops@example.com", "web@example.com"]);
        assert_eq!(mail.subject, "Certificate “web.example” expires in 9d");
        assert_eq!(
            mail.text(),
            "Time left — 9d 23h, a long line that goes on and on and on and is joined again\n\
             .leading dot"
        );
        assert_eq!(mail.html(), "<td>web.example</td>");
        assert_eq!(
            mail.content_types,
            ["multipart/alternative", "text/plain", "text/html"]
        );
        assert_eq!(mail.header("to"), Some("ops@example.com, web@example.com"));
        assert!(mail.raw.contains("PHRkPndlYi5leGFtcGxlPC90ZD4="));
        assert_eq!(mail.auth_user, None);

        smtp.stop();
        let refused = TcpStream::connect(("127.0.0.1", smtp.port));
        assert!(refused.is_err(), "a stopped server refuses connections");
        let taken = std::net::TcpListener::bind(("127.0.0.1", smtp.port));
        assert!(taken.is_err(), "the port stays reserved while stopped");

        smtp.restart();
        send(
            smtp.port,
            None,
            "a@example.com",
            &["b@example.com"],
            "Subject: plain\r\n\r\nonly text\r\n",
        )
        .unwrap();
        let mails = smtp.wait_for(2, super::super::DEADLINE);
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[1].subject, "plain");
        assert_eq!(mails[1].text(), "only text\n");
        assert_eq!(mails[1].html, None);
        assert!(smtp.dir().join("2.json").exists());
    }

    #[test]
    fn refuses_the_recipients_it_is_told_to() {
        let scratch = tempfile::tempdir().unwrap();
        let mut smtp = SmtpServer::start(scratch.path().join("mail"));
        smtp.reject(&["nobody@example.com"]);
        let message = "Subject: s\r\n\r\nbody\r\n";
        let refused = send(
            smtp.port,
            None,
            "a@example.com",
            &["nobody@example.com"],
            message,
        )
        .unwrap_err();
        assert!(refused.contains("550"), "{refused}");
        send(
            smtp.port,
            None,
            "a@example.com",
            &["ops@example.com"],
            message,
        )
        .unwrap();
        smtp.reject(&[]);
        send(
            smtp.port,
            None,
            "a@example.com",
            &["nobody@example.com"],
            message,
        )
        .unwrap();
        let mails = smtp.wait_for(2, super::super::DEADLINE);
        assert_eq!(mails[0].to, ["ops@example.com"]);
        assert_eq!(mails[1].to, ["nobody@example.com"]);
    }

    #[test]
    fn refuses_with_the_code_it_is_told_and_fails_the_first_attempts_for_a_while() {
        let scratch = tempfile::tempdir().unwrap();
        let mut smtp = SmtpServer::start(scratch.path().join("mail"));
        smtp.refuse(&[("a@example.com", 551), ("b@example.com", 553)]);
        let message = "Subject: s\r\n\r\nbody\r\n";
        let from = "lapse@example.com";
        let refused = send(smtp.port, None, from, &["a@example.com"], message).unwrap_err();
        assert!(
            refused.contains("got \"551 5.1.6 User not local"),
            "{refused}"
        );
        let refused = send(smtp.port, None, from, &["b@example.com"], message).unwrap_err();
        assert!(
            refused.contains("got \"553 5.1.3 Mailbox name not allowed"),
            "{refused}"
        );

        smtp.fail_first(2);
        for _ in 0..2 {
            let later = send(smtp.port, None, from, &["ops@example.com"], message).unwrap_err();
            assert!(later.contains("got \"451 4.3.0"), "{later}");
        }
        send(smtp.port, None, from, &["ops@example.com"], message).unwrap();
        // A restart does not fail again.
        smtp.restart();
        send(smtp.port, None, from, &["ops@example.com"], message).unwrap();
        let mails = smtp.wait_for(2, super::super::DEADLINE);
        assert_eq!(mails.len(), 2);
    }

    #[test]
    fn requires_auth_when_configured_and_records_the_user() {
        let scratch = tempfile::tempdir().unwrap();
        let smtp = SmtpServer::start_with_auth(scratch.path().join("mail"), "u", "s3cret");
        let (from, to) = ("a@example.com", &["b@example.com"][..]);
        let refused = send(smtp.port, None, from, to, "x").unwrap_err();
        assert!(refused.contains("530"), "MAIL without AUTH: {refused}");
        let refused = send(smtp.port, Some(("u", "nope")), from, to, "x").unwrap_err();
        assert!(refused.contains("535"), "a wrong password: {refused}");
        send(
            smtp.port,
            Some(("u", "s3cret")),
            from,
            to,
            "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\r\n",
        )
        .unwrap();
        let mails = smtp.wait_for(1, super::super::DEADLINE);
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].auth_user.as_deref(), Some("u"));
        assert_eq!(mails[0].subject, "café");
    }
}
