//! `pazar search …`: the search index of a running server, through its admin
//! API (the server holds the index open, and only it can swap a rebuilt one in
//! while it keeps answering searches).

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Which server, and the administrator who asks.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// The server's base URL (the process that hosts the catalog).
    #[arg(long, env = "PAZAR_URL", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An administrator's access token (instead of e-mail and password).
    #[arg(long, env = "PAZAR_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// An administrator's e-mail, to sign in with.
    #[arg(long, env = "PAZAR_ADMIN_EMAIL")]
    email: Option<String>,
    /// That administrator's password.
    #[arg(long, env = "PAZAR_ADMIN_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

/// A signed-in client of the admin API.
struct Admin {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl Admin {
    async fn sign_in(args: &ServerArgs) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let server = args.server.trim_end_matches('/').to_owned();
        let token = match (&args.token, &args.email, &args.password) {
            (Some(token), _, _) => token.clone(),
            (None, Some(email), Some(password)) => {
                let session = answer(
                    http.post(format!("{server}/api/v1/auth/login"))
                        .json(&json!({"email": email, "password": password}))
                        .send()
                        .await
                        .with_context(|| format!("reaching {server}"))?,
                )
                .await
                .context("signing in")?;
                session["access_token"]
                    .as_str()
                    .context("the sign-in answer has no access token")?
                    .to_owned()
            }
            _ => anyhow::bail!(
                "an administrator is needed: --token (PAZAR_ADMIN_TOKEN), or --email and \
                 --password (PAZAR_ADMIN_EMAIL, PAZAR_ADMIN_PASSWORD)"
            ),
        };
        Ok(Self {
            http,
            server,
            token,
        })
    }

    async fn status(&self) -> anyhow::Result<Value> {
        answer(
            self.http
                .get(format!("{}/api/v1/admin/search", self.server))
                .bearer_auth(&self.token)
                .send()
                .await?,
        )
        .await
    }
}

/// The JSON of a successful answer; the problem's detail otherwise.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let detail = body["detail"]
        .as_str()
        .or_else(|| body["title"].as_str())
        .unwrap_or("no detail given");
    anyhow::bail!("the server answered {status}: {detail}")
}

/// `pazar search status`.
pub async fn status(args: &ServerArgs) -> anyhow::Result<()> {
    let admin = Admin::sign_in(args).await?;
    println!("{}", serde_json::to_string_pretty(&admin.status().await?)?);
    Ok(())
}

/// `pazar search reindex`: starts a rebuild (or follows the one running) and
/// shows its progress until the new index is swapped in.
pub async fn reindex(args: &ServerArgs) -> anyhow::Result<()> {
    let admin = Admin::sign_in(args).await?;
    let before = admin.status().await?["last_reindex"].clone();
    let started = admin
        .http
        .post(format!("{}/api/v1/admin/search/reindex", admin.server))
        .bearer_auth(&admin.token)
        .send()
        .await?;
    if started.status() == reqwest::StatusCode::CONFLICT {
        let problem: Value = started.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(
            problem["reason"] == "reindexing",
            "the server refused: {}",
            problem["detail"].as_str().unwrap_or("conflict")
        );
        eprintln!("a reindex is already running; following it");
    } else {
        answer(started).await.context("starting the reindex")?;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} products ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let began = Instant::now();
    let status = loop {
        let status = admin.status().await?;
        if status["reindexing"] != true {
            break status;
        }
        if let (Some(done), Some(total)) = (
            status["reindex_done"].as_u64(),
            status["reindex_total"].as_u64(),
        ) {
            bar.set_length(total);
            bar.set_position(done);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    if let Some(error) = status["last_reindex_error"].as_str() {
        anyhow::bail!("the reindex failed: {error}");
    }
    anyhow::ensure!(
        status["last_reindex"] != before && !status["last_reindex"].is_null(),
        "the reindex ended without swapping a new index in (see the server's log)"
    );
    println!(
        "reindexed {} products into {} in {:.1}s",
        status["documents"],
        status["backend"].as_str().unwrap_or("the index"),
        began.elapsed().as_secs_f64()
    );
    Ok(())
}
