//! How long a standby takes to take the catalog role over: an active
//! `pazar serve --roles catalog` process and a standby on one PostgreSQL; the
//! active one is SIGKILLed (its lease must lapse) or SIGTERMed (it gives the lease
//! back), and the time until the standby serves is measured, `--runs` times each.
//! The baseline is the lease's life, the bound a crash-detecting standby works
//! against.
//!
//! `cargo build --release -p pazar && cargo run --release -p pazar-bench --bin takeover -- --runs 5`

use clap::Parser;
use pazar_bench::{BenchDb, RoleProcess};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Take-overs measured per way of stopping the active process.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// `PAZAR_LEASE_TTL` of both processes (the default of `pazar serve`).
    #[arg(long, default_value = "5s")]
    lease_ttl: String,
}

const ENV: [(&str, &str); 3] = [
    ("PAZAR_ROLES", "catalog"),
    (
        "PAZAR_JWT_SECRET",
        "takeover-bench-signing-key-0123456789abcdef",
    ),
    (
        "PAZAR_INTERNAL_TOKEN",
        "takeover-bench-internal-secret-0123456789abc",
    ),
];

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(samples: &[Duration]) -> String {
    let all: Vec<String> = samples
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
        .collect();
    all.join(" / ")
}

/// Starts a process with the catalog role in the background (a standby does
/// not listen until it holds the lease).
fn standby(url: &str, env: &[(&str, &str)]) -> tokio::task::JoinHandle<RoleProcess> {
    let url = url.to_owned();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::spawn(async move {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        RoleProcess::start(&url, &env).await
    })
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let ttl = pazar_duration(&args.lease_ttl);
    let db = BenchDb::postgres().await;
    let mut env = ENV.to_vec();
    env.push(("PAZAR_LEASE_TTL", &args.lease_ttl));
    println!(
        "take-over of the catalog role by a standby, lease life {}, {} runs each",
        args.lease_ttl, args.runs
    );
    let mut active = RoleProcess::start(&db.url, &env).await;
    let mut killed = Vec::new();
    let mut stopped = Vec::new();
    for run in 0..args.runs * 2 {
        let next = standby(&db.url, &env);
        // The standby is waiting when it has connected and tried the lease once;
        // give it that long (it cannot listen before the active one is gone).
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !next.is_finished(),
            "the standby started while the role was held"
        );
        let graceful = run % 2 == 1;
        let began = Instant::now();
        if graceful {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &active.pid().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
        } else {
            let status = std::process::Command::new("kill")
                .args(["-KILL", &active.pid().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
        }
        let successor = next.await.expect("standby");
        let took = began.elapsed();
        let ready = reqwest::get(format!("{}/ready", successor.base))
            .await
            .expect("ready");
        assert!(ready.status().is_success());
        if graceful {
            stopped.push(took);
        } else {
            killed.push(took);
        }
        active.kill().await;
        active = successor;
    }
    active.kill().await;
    println!(
        "after SIGKILL (the lease lapses): p50 {:.0} ms  runs {} ms",
        median(killed.clone()).as_secs_f64() * 1e3,
        ms(&killed)
    );
    println!(
        "after SIGTERM (the lease is given back): p50 {:.0} ms  runs {} ms",
        median(stopped.clone()).as_secs_f64() * 1e3,
        ms(&stopped)
    );
    println!(
        "baseline lease life {:.0} ms; ratio SIGKILL take-over / lease life: {:.2}",
        ttl.as_secs_f64() * 1e3,
        median(killed).as_secs_f64() / ttl.as_secs_f64()
    );
    db.drop_database().await;
}

/// `5s`, `500ms`, `1m`.
fn pazar_duration(text: &str) -> Duration {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number.parse().expect("a number");
    match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        other => panic!("unknown unit {other}"),
    }
}
