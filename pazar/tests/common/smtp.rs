//! A real SMTP server for tests (aiosmtpd, `tools/smtp_sink.py`, run with the
//! Python that `.ci/run` exports as `PAZAR_TEST_PYTHON`), and the messages it
//! received, parsed with mail-parser.

use mail_parser::MessageParser;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A real SMTP server (aiosmtpd) storing each message as `<n>.eml` in a folder.
pub struct SmtpSink {
    pub port: u16,
    pub maildir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts the server with extra `smtp_sink.py` arguments (TLS, AUTH).
    pub async fn start_with(extra: &[String]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut sink = Self {
            port,
            maildir: tempfile::tempdir().unwrap(),
            child: None,
            extra: extra.to_vec(),
        };
        sink.launch(false).await;
        sink
    }

    /// (Re)starts the server on the same port; `reject_all` refuses every recipient (550).
    pub async fn launch(&mut self, reject_all: bool) {
        let python = std::env::var("PAZAR_TEST_PYTHON").expect(
            "PAZAR_TEST_PYTHON must name a Python with aiosmtpd: run the tests with .ci/run",
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/smtp_sink.py");
        let mut command = Command::new(python);
        command
            .arg(script)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--maildir")
            .arg(self.maildir.path())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        if reject_all {
            command.arg("--reject-all");
        }
        command.args(&self.extra);
        let mut child = command.spawn().expect("start the SMTP sink");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP sink starts within 20 s")
            .unwrap()
            .unwrap_or_default();
        assert!(ready.contains("listening"), "SMTP sink said {ready:?}");
        self.child = Some(child);
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
            child.wait().await.unwrap();
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Mail> {
        read_mails(self.maildir.path())
    }

    /// Waits until `check` holds for what was received (15 s deadline).
    pub async fn wait_until(&self, what: &str, check: impl Fn(&[Mail]) -> bool) -> Vec<Mail> {
        wait_for_mails(self.maildir.path(), what, check).await
    }
}

/// A received message, parsed.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

pub fn read_mails(folder: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let raw = std::fs::read(path).unwrap();
            let message = MessageParser::default()
                .parse(&raw)
                .unwrap_or_else(|| panic!("{} does not parse as a mail", path.display()));
            assert_eq!(message.text_body_count(), 1, "one text part");
            assert_eq!(message.html_body_count(), 1, "one html part");
            Mail {
                to: message
                    .to()
                    .and_then(|to| to.first())
                    .and_then(|to| to.address())
                    .unwrap_or_default()
                    .to_owned(),
                subject: message.subject().unwrap_or_default().to_owned(),
                text: message.body_text(0).unwrap_or_default().into_owned(),
                html: message.body_html(0).unwrap_or_default().into_owned(),
                raw: String::from_utf8_lossy(&raw).into_owned(),
            }
        })
        .collect()
}

pub async fn wait_for_mails(
    folder: &Path,
    what: &str,
    check: impl Fn(&[Mail]) -> bool,
) -> Vec<Mail> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mails = read_mails(folder);
        if check(&mails) {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "{what}; received: {:#?}",
            mails
                .iter()
                .map(|m| (&m.to, &m.subject))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
