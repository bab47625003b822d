//! `pazar`: the one binary. It parses configuration and wires the store, the
//! supervision tree and the HTTP server together; all behaviour lives in the
//! library crates.

mod config;
mod demo;
mod search_cli;

/// mimalloc, with a reclaimer that returns the memory of passivated actors.
#[global_allocator]
static ALLOCATOR: pazar_allocator::Allocator = pazar_allocator::Allocator {};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pazar_actors::Role;
use pazar_app::{AppState, HttpConfig, MailConfig, Roles, Shop, ShopConfig};
use pazar_catalog::NewProduct;
use pazar_http::internal::InternalToken;
use pazar_http::{TokenConfig, TokenIssuer};
use pazar_payments::PaymentProvider;
use pazar_supervisor::EntityPolicy;
use pazar_users::{LoginThrottlePolicy, NewUser};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "pazar",
    version,
    about = "Pazar: an e-commerce backend as a supervised actor system"
)]
struct Cli {
    /// Optional TOML file with the same keys as the environment variables, in lower case.
    #[arg(
        long,
        global = true,
        default_value = "pazar.toml",
        env = "PAZAR_CONFIG"
    )]
    config: PathBuf,
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Where Pazar keeps its files (SQLite database, signing key).
    #[arg(long, global = true, env = "PAZAR_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: SQLite under the data directory.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Log filter, e.g. `info` or `pazar=debug`.
    #[arg(long, global = true, env = "PAZAR_LOG", default_value = "info")]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Fill the catalog with demo products.
    Seed {
        /// How many products to create.
        #[arg(long, default_value_t = 100)]
        products: u64,
    },
    /// Talk to Kafka as an outside system does.
    Kafka {
        #[command(subcommand)]
        command: KafkaCommand,
    },
    /// Operate the product search index of a running server.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
}

#[derive(Subcommand)]
enum SearchCommand {
    /// Rebuild the index from the store with a progress bar: the server builds
    /// a new index while the old one keeps answering, then swaps them. Asks the
    /// server that keeps the index (it holds it open), as an administrator.
    Reindex(search_cli::ServerArgs),
    /// Print the index's status.
    Status(search_cli::ServerArgs),
}

#[derive(Subcommand)]
enum KafkaCommand {
    /// Feed a file of stock adjustments (JSON Lines, one adjustment per line,
    /// see the README) to the inbound stock topic; every line is checked first,
    /// and nothing is sent when one is wrong.
    ProduceStock {
        /// The file.
        #[arg(long)]
        file: std::path::PathBuf,
        /// Kafka brokers (`host:port,…`).
        #[arg(long, env = "KAFKA_BROKERS")]
        brokers: String,
        /// Topic names start with this.
        #[arg(long, env = "PAZAR_KAFKA_TOPIC_PREFIX", default_value = "pazar")]
        topic_prefix: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator account.
    Create {
        /// Login e-mail.
        #[arg(long)]
        email: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "PAZAR_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        /// Display name.
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "PAZAR_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// HMAC key for access tokens (at least 32 bytes); default: generated into the data directory.
    #[arg(long, env = "PAZAR_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Lifetime of an access token.
    #[arg(long, env = "PAZAR_ACCESS_TOKEN_TTL", default_value = "1h", value_parser = config::parse_duration)]
    access_token_ttl: Duration,
    /// Largest request body in bytes.
    #[arg(long, env = "PAZAR_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// An entity actor idle this long is passivated.
    #[arg(long, env = "PAZAR_ACTOR_IDLE_TIMEOUT", default_value = "5m", value_parser = config::parse_duration)]
    actor_idle_timeout: Duration,
    /// The longest any actor call may take.
    #[arg(long, env = "PAZAR_CALL_TIMEOUT", default_value = "5s", value_parser = config::parse_duration)]
    call_timeout: Duration,
    /// Entity failures tolerated within the restart window before escalating.
    #[arg(long, env = "PAZAR_MAX_RESTARTS", default_value_t = 10)]
    max_restarts: u32,
    /// The restart-intensity window.
    #[arg(long, env = "PAZAR_RESTART_WINDOW", default_value = "10s", value_parser = config::parse_duration)]
    restart_window: Duration,
    /// How long a checkout holds stock for payment before the order expires.
    #[arg(long, env = "PAZAR_ORDER_TTL", default_value = "15m", value_parser = config::parse_duration)]
    order_ttl: Duration,
    /// How often expired orders and lapsed holds are swept.
    #[arg(long, env = "PAZAR_SWEEP_INTERVAL", default_value = "1s", value_parser = config::parse_duration)]
    sweep_interval: Duration,
    /// An open payment without news this long is checked at the provider (a lost webhook).
    #[arg(long, env = "PAZAR_PAYMENT_RECONCILE_AFTER", default_value = "10m", value_parser = config::parse_duration)]
    payment_reconcile_after: Duration,
    /// Who takes payments: `local` (embedded simulator, no network) or `stripe`.
    #[arg(long, env = "PAZAR_PAYMENT_PROVIDER", value_enum, default_value_t = ProviderChoice::Local)]
    payment_provider: ProviderChoice,
    /// Stripe secret key (`sk_…`), required with `--payment-provider stripe`.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    stripe_secret_key: Option<String>,
    /// Stripe publishable key (`pk_…`) handed to the payment page.
    #[arg(long, env = "STRIPE_PUBLISHABLE_KEY")]
    stripe_publishable_key: Option<String>,
    /// Stripe API base URL (default https://api.stripe.com/); for a local Stripe-compatible server.
    #[arg(long, env = "STRIPE_API_BASE")]
    stripe_api_base: Option<String>,
    /// Where the payment page loads Stripe.js from (default
    /// https://js.stripe.com/v3/); its origin is allowed by the pages' CSP.
    #[arg(long, env = "STRIPE_JS_URL")]
    stripe_js_url: Option<String>,
    /// The secret Stripe signs webhooks with (enables `POST /api/v1/webhooks/stripe`).
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    stripe_webhook_secret: Option<String>,
    /// The shop's name, shown in mails.
    #[arg(long, env = "PAZAR_SHOP_NAME", default_value = "Pazar")]
    shop_name: String,
    /// Where customers reach the shop (links in mails, e.g. the payment page).
    #[arg(
        long,
        env = "PAZAR_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    public_url: String,
    /// SMTP server for mail, e.g. `smtp://user:pass@host:587` (STARTTLS) or `smtps://…`;
    /// unset: mails are written as .eml files under `$PAZAR_DATA_DIR/mail`.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// A PEM file with an extra trusted root for the SMTP server's certificate
    /// (a relay with a private CA); the public roots are always trusted.
    #[arg(long, env = "SMTP_CA_FILE")]
    smtp_ca_file: Option<PathBuf>,
    /// The sender of mails.
    #[arg(
        long,
        env = "PAZAR_MAIL_FROM",
        default_value = "Pazar <no-reply@pazar.localhost>"
    )]
    mail_from: String,
    /// Send attempts before a mail is given up (listed as failed for admins).
    #[arg(long, env = "PAZAR_MAIL_MAX_ATTEMPTS", default_value_t = 8)]
    mail_max_attempts: i32,
    /// Wait before the first retry of a mail; each next wait doubles.
    #[arg(long, env = "PAZAR_MAIL_RETRY_BASE", default_value = "2s", value_parser = config::parse_duration)]
    mail_retry_base: Duration,
    /// The longest wait between two attempts of a mail.
    #[arg(long, env = "PAZAR_MAIL_RETRY_MAX", default_value = "10m", value_parser = config::parse_duration)]
    mail_retry_max: Duration,
    /// Login attempts per account within 15 minutes before it is throttled (a
    /// success clears them).
    #[arg(long, env = "PAZAR_LOGIN_MAX_FAILURES", default_value_t = 5)]
    login_max_failures: usize,
    /// Login attempts from one client address within 15 minutes before it is throttled.
    #[arg(long, env = "PAZAR_LOGIN_MAX_PER_ADDRESS", default_value_t = 20)]
    login_max_per_address: usize,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` name the client (CIDR list,
    /// e.g. `10.0.0.0/8,::1`); from anyone else those headers are ignored.
    #[arg(long, env = "PAZAR_TRUSTED_PROXIES", default_value = "", value_parser = pazar_http::client_address::TrustedProxies::parse)]
    trusted_proxies: pazar_http::client_address::TrustedProxies,
    /// A connection that sends nothing for this long is closed (also one that never
    /// finishes its request head).
    #[arg(long, env = "PAZAR_IDLE_TIMEOUT", default_value = "15s", value_parser = config::parse_duration)]
    idle_timeout: Duration,
    /// Live-cart sockets one user may hold open; a new one closes the oldest.
    #[arg(long, env = "PAZAR_LIVE_SOCKETS_PER_USER", default_value_t = 5)]
    live_sockets_per_user: usize,
    /// The services this process runs: `all`, or a comma-separated subset of
    /// catalog, orders, users, payments, notifications (split roles need PostgreSQL).
    #[arg(long, env = "PAZAR_ROLES", default_value = "all")]
    roles: Roles,
    /// Where the catalog role answers (e.g. `http://catalog:8080`; several,
    /// comma-separated, for a standby), for an orders role running without it.
    #[arg(long, env = "PAZAR_CATALOG_URL")]
    catalog_url: Option<String>,
    /// Shared secret of the internal API between roles (at least 32 bytes);
    /// required when roles are split.
    #[arg(long, env = "PAZAR_INTERNAL_TOKEN", hide_env_values = true)]
    internal_token: Option<String>,
    /// Query connections to PostgreSQL this process opens at most (the store
    /// writer has one more); processes of split roles share the server's limit.
    #[arg(long, env = "PAZAR_DB_POOL_SIZE", default_value_t = pazar_store::DEFAULT_POOL_SIZE)]
    db_pool_size: u32,
    /// Life of a role lease (PostgreSQL): a standby takes a role over within
    /// about this long of its holder dying; the holder renews every third of it.
    #[arg(long, env = "PAZAR_LEASE_TTL", default_value = "5s", value_parser = config::parse_duration)]
    lease_ttl: Duration,
    /// Kafka brokers (`host:port,…`): events travel through Kafka — the outbox is
    /// relayed to its topics and every role's subscribers consume them.
    #[arg(long, env = "KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// Kafka topic names start with this.
    #[arg(long, env = "PAZAR_KAFKA_TOPIC_PREFIX", default_value = "pazar")]
    kafka_topic_prefix: String,
    /// Partitions of the Kafka topics Pazar creates.
    #[arg(long, env = "PAZAR_KAFKA_PARTITIONS", default_value_t = 3)]
    kafka_partitions: i32,
    /// How long one produce may wait for the broker before the relay retries it.
    #[arg(long, env = "PAZAR_KAFKA_DELIVERY_TIMEOUT", default_value = "10s", value_parser = config::parse_duration)]
    kafka_delivery_timeout: Duration,
    /// A Kafka consumer silent this long is out of its group.
    #[arg(long, env = "PAZAR_KAFKA_SESSION_TIMEOUT", default_value = "6s", value_parser = config::parse_duration)]
    kafka_session_timeout: Duration,
    /// The longest a Kafka consumer may go between reads before it leaves its
    /// group; it also bounds how long a group's first join takes.
    #[arg(long, env = "PAZAR_KAFKA_MAX_POLL_INTERVAL", default_value = "10s", value_parser = config::parse_duration)]
    kafka_max_poll_interval: Duration,
    /// Attempts at a failing message before it becomes a dead letter (an
    /// outage of the store or of a service is waited out instead).
    #[arg(long, env = "PAZAR_KAFKA_MAX_ATTEMPTS", default_value_t = 5)]
    kafka_max_attempts: u32,
    /// How long a consumer's fetch may wait at the broker for new messages.
    #[arg(long, env = "PAZAR_KAFKA_FETCH_WAIT", default_value = "10ms", value_parser = config::parse_duration)]
    kafka_fetch_wait: Duration,
    /// The first retry delay of a failing message (doubling up to 5s).
    #[arg(long, env = "PAZAR_KAFKA_RETRY_BACKOFF", default_value = "100ms", value_parser = config::parse_duration)]
    kafka_retry_backoff: Duration,
    /// On a first run (an empty catalog), add a demo catalog and an
    /// administrator whose password is printed; a shop with products is left alone.
    #[arg(long, env = "PAZAR_DEMO")]
    demo: bool,
    /// Elasticsearch's URL (e.g. `https://search:9200`): product search runs
    /// there instead of the embedded tantivy index under `PAZAR_DATA_DIR/search`.
    #[arg(long, env = "ELASTICSEARCH_URL")]
    elasticsearch_url: Option<String>,
    /// Elasticsearch user (basic authentication, with `ELASTICSEARCH_PASSWORD`).
    #[arg(long, env = "ELASTICSEARCH_USERNAME")]
    elasticsearch_username: Option<String>,
    /// Elasticsearch password.
    #[arg(long, env = "ELASTICSEARCH_PASSWORD", hide_env_values = true)]
    elasticsearch_password: Option<String>,
    /// The alias products are searched and written through; its indices are
    /// named after it.
    #[arg(long, env = "ELASTICSEARCH_INDEX", default_value = "pazar-products")]
    elasticsearch_index: String,
    /// An OpenTelemetry collector's OTLP/HTTP address (e.g. `http://collector:4318`):
    /// each request and internal call is exported as a span. Unset: no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otel_endpoint: Option<String>,
    /// The service name spans are exported under; default `pazar` (`pazar-<roles>`
    /// for split roles).
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    otel_service_name: Option<String>,
}

/// Product search: Elasticsearch when its URL is given, tantivy under the data
/// folder otherwise.
fn search_backend(
    args: &ServeArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<pazar_app::SearchBackend> {
    let Some(url) = &args.elasticsearch_url else {
        return Ok(pazar_app::SearchBackend::Embedded(data_dir.join("search")));
    };
    let mut settings = pazar_search::ElasticSettings::new(url);
    settings.credentials = match (&args.elasticsearch_username, &args.elasticsearch_password) {
        (Some(user), Some(password)) => Some((user.clone(), password.clone())),
        (None, None) => None,
        _ => anyhow::bail!("ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD go together"),
    };
    anyhow::ensure!(
        !args.elasticsearch_index.is_empty()
            && !args.elasticsearch_index.starts_with(['-', '_'])
            && args
                .elasticsearch_index
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
        "ELASTICSEARCH_INDEX must be lower-case letters, digits, - and _, not starting with - or _"
    );
    settings.alias.clone_from(&args.elasticsearch_index);
    Ok(pazar_app::SearchBackend::Elasticsearch(settings))
}

/// What split roles need that one process does not: PostgreSQL shared by all,
/// one signing key for tokens, the internal API's secret.
fn check_split(args: &ServeArgs, url: &str) -> anyhow::Result<Option<InternalToken>> {
    let token = args
        .internal_token
        .as_deref()
        .map(InternalToken::new)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if args.roles.is_all() {
        return Ok(token);
    }
    anyhow::ensure!(
        url.starts_with("postgres"),
        "--roles {} needs PostgreSQL (DATABASE_URL=postgres://…): processes with different \
         roles share one database, and SQLite is one process's file. Use --roles all \
         (the default) with SQLite",
        args.roles
    );
    anyhow::ensure!(
        args.jwt_secret.is_some(),
        "--roles {} needs PAZAR_JWT_SECRET: every role must accept the tokens the users \
         role issues, so they share one configured key (the generated key file is for \
         a single process)",
        args.roles
    );
    anyhow::ensure!(
        token.is_some(),
        "--roles {} needs PAZAR_INTERNAL_TOKEN (at least 32 bytes, the same in every \
         process): roles call each other's internal API with it",
        args.roles
    );
    Ok(token)
}

/// The payment providers `serve` can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ProviderChoice {
    /// The embedded simulator of Stripe's test cards.
    Local,
    /// Stripe (or a Stripe-compatible server at `--stripe-api-base`).
    Stripe,
}

/// Templates and the transport: SMTP when `SMTP_URL` is set, else `.eml` files.
fn mail(args: &ServeArgs, data_dir: &std::path::Path) -> anyhow::Result<MailConfig> {
    let transport = match &args.smtp_url {
        Some(url) => {
            let extra_root = match &args.smtp_ca_file {
                Some(path) => Some(
                    std::fs::read(path)
                        .with_context(|| format!("reading SMTP_CA_FILE {}", path.display()))?,
                ),
                None => None,
            };
            pazar_notifications::adapters::LettreTransport::smtp(
                url,
                &args.mail_from,
                extra_root.as_deref(),
            )?
        }
        None => pazar_notifications::adapters::LettreTransport::files(
            data_dir.join("mail"),
            &args.mail_from,
        )?,
    };
    anyhow::ensure!(
        args.mail_max_attempts >= 1,
        "PAZAR_MAIL_MAX_ATTEMPTS must be at least 1"
    );
    Ok(MailConfig {
        renderer: Arc::new(pazar_notifications::adapters::Templates::new(
            &args.shop_name,
            &args.public_url,
        )?),
        transport: Arc::new(transport),
        max_attempts: args.mail_max_attempts,
        retry_base: args.mail_retry_base,
        retry_max: args.mail_retry_max,
    })
}

/// The configured payment provider; `None` is the embedded local one.
fn payment_provider(args: &ServeArgs) -> anyhow::Result<Option<Arc<dyn PaymentProvider>>> {
    match args.payment_provider {
        ProviderChoice::Local => Ok(None),
        ProviderChoice::Stripe => {
            let secret_key = args
                .stripe_secret_key
                .clone()
                .context("--payment-provider stripe needs STRIPE_SECRET_KEY")?;
            if args.stripe_webhook_secret.is_none() {
                tracing::warn!(
                    "STRIPE_WEBHOOK_SECRET is not set: payments are learnt only by reconciliation"
                );
            }
            let stripe = pazar_payments::stripe::StripePayments::new(
                pazar_payments::stripe::StripeSettings {
                    secret_key,
                    publishable_key: args.stripe_publishable_key.clone(),
                    api_base: args.stripe_api_base.clone(),
                    js_url: args.stripe_js_url.clone(),
                },
            )?;
            Ok(Some(Arc::new(stripe)))
        }
    }
}

fn main() -> anyhow::Result<()> {
    // The TOML file feeds the environment, so read it before clap and before threads.
    let args: Vec<String> = std::env::args().collect();
    config::load_toml(&config::toml_path(&args))?;
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.common.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(pazar_allocator::on_worker_park)
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = cli.common.data_dir.clone();
    let url = config::database_url(cli.common.database_url.as_deref(), &data_dir);
    match cli.command {
        Command::Migrate => {
            let applied = pazar_store::migrate(&url).await?;
            println!(
                "{applied} migrations applied to {}",
                pazar_store::redact(&url)
            );
            Ok(())
        }
        Command::Serve(args) => serve(*args, &url, &data_dir).await,
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    password,
                    name,
                },
        } => {
            let users = pazar_store::connect_and_migrate(&url).await?.users;
            // Events land in the outbox; the server's relay delivers them.
            let accounts = pazar_users::Accounts::new(
                users,
                LoginThrottlePolicy::default(),
                Default::default(),
            )?;
            let new = NewUser::parse(&email, &password, &name, Role::Admin)?;
            let user = accounts.register(new).await?;
            println!("admin {} created with id {}", user.email.as_str(), user.id);
            Ok(())
        }
        Command::Seed { products } => seed(&url, products).await,
        Command::Kafka {
            command:
                KafkaCommand::ProduceStock {
                    file,
                    brokers,
                    topic_prefix,
                },
        } => produce_stock(&file, &brokers, &topic_prefix).await,
        Command::Search {
            command: SearchCommand::Reindex(server),
        } => search_cli::reindex(&server).await,
        Command::Search {
            command: SearchCommand::Status(server),
        } => search_cli::status(&server).await,
    }
}

/// `pazar kafka produce-stock`: checks every line, then produces them all,
/// each keyed by its product, and waits for the broker's acknowledgements.
async fn produce_stock(
    file: &std::path::Path,
    brokers: &str,
    topic_prefix: &str,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let mut messages = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let adjustment = pazar_catalog::inbound::Adjustment::parse(line.as_bytes())
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", file.display(), index + 1))?;
        messages.push((adjustment.key(), line.as_bytes().to_vec()));
    }
    let mut settings = pazar_kafka_bridge::KafkaSettings::new(brokers);
    settings.topic_prefix = topic_prefix.to_owned();
    let topic = settings.inbound_topic("inbound.stock");
    pazar_kafka_bridge::ensure_topics(&settings).await?;
    let sent = pazar_kafka_bridge::produce_all(&settings, &topic, &messages).await?;
    println!("{sent} adjustments produced to {topic}");
    Ok(())
}

async fn serve(args: ServeArgs, url: &str, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let internal_token = check_split(&args, url)?;
    anyhow::ensure!(
        args.lease_ttl >= Duration::from_millis(500),
        "PAZAR_LEASE_TTL must be at least 500ms (it is renewed every third of it)"
    );
    let store = pazar_store::connect_and_migrate_with(url, args.db_pool_size)
        .await
        .with_context(|| format!("opening {}", pazar_store::redact(url)))?;
    let policy = EntityPolicy {
        idle_timeout: args.actor_idle_timeout,
        call_timeout: args.call_timeout,
        max_restarts: args.max_restarts,
        restart_window: args.restart_window,
    };
    // A standby waits here for its roles' leases: a stop signal ends the wait.
    let starting = Shop::start(
        store,
        ShopConfig {
            stock_policy: policy,
            cart_policy: policy,
            order_policy: policy,
            order_ttl: args.order_ttl,
            sweep_every: args.sweep_interval,
            payment_policy: policy,
            reconcile_after: args.payment_reconcile_after,
            payment_provider: payment_provider(&args)?,
            mail: Some(mail(&args, data_dir)?),
            live_sockets_per_user: args.live_sockets_per_user,
            login_throttle: LoginThrottlePolicy {
                max_failures_per_account: args.login_max_failures,
                max_failures_per_address: args.login_max_per_address,
                ..LoginThrottlePolicy::default()
            },
            roles: args.roles,
            catalog_url: args.catalog_url.clone(),
            internal_token: internal_token.clone(),
            lease_ttl: Some(args.lease_ttl),
            otlp: args.otel_endpoint.clone().map(|endpoint| {
                let service = args.otel_service_name.clone().unwrap_or_else(|| {
                    if args.roles.is_all() {
                        "pazar".to_owned()
                    } else {
                        format!("pazar-{}", args.roles)
                    }
                });
                (endpoint, service)
            }),
            kafka: args.kafka_brokers.as_deref().map(|brokers| {
                let mut kafka = pazar_kafka_bridge::KafkaSettings::new(brokers);
                kafka.topic_prefix.clone_from(&args.kafka_topic_prefix);
                kafka.partitions = args.kafka_partitions.max(1);
                kafka.delivery_timeout =
                    args.kafka_delivery_timeout.max(Duration::from_millis(100));
                kafka.session_timeout = args.kafka_session_timeout.max(Duration::from_secs(1));
                kafka.max_poll_interval = args.kafka_max_poll_interval.max(kafka.session_timeout);
                kafka.max_attempts = args.kafka_max_attempts.max(1);
                kafka.retry_backoff = args.kafka_retry_backoff.max(Duration::from_millis(1));
                kafka.fetch_wait = args.kafka_fetch_wait.max(Duration::from_millis(1));
                kafka
            }),
            search: Some(search_backend(&args, data_dir)?),
            ..ShopConfig::default()
        },
    );
    let shop = tokio::select! {
        shop = starting => shop?,
        _ = shutdown_signal() => {
            tracing::info!("stopped before taking the roles' leases");
            return Ok(());
        }
    };
    if args.demo {
        demo::fill(&shop).await.context("filling the demo shop")?;
    }
    let tokens =
        TokenConfig::load_or_generate(args.jwt_secret.as_deref(), data_dir, args.access_token_ttl)
            .context("loading the token signing key")?;
    let state = Arc::new(
        AppState::new(shop.clone(), TokenIssuer::new(&tokens))
            .with_trusted_proxies(args.trusted_proxies.clone()),
    );
    let alive = {
        let shop = shop.clone();
        move || shop.alive_actors()
    };
    pazar_allocator::spawn_reclaimer(alive, Duration::from_secs(5), 1000);
    let failure = {
        let shop = shop.clone();
        async move { shop.failure().await }
    };
    let (escalated_tx, mut escalated_rx) = tokio::sync::oneshot::channel::<String>();
    let shutdown = async move {
        tokio::select! {
            _ = shutdown_signal() => tracing::info!("shutting down"),
            reason = failure => {
                tracing::error!(%reason, "supervision tree failed; stopping the server");
                let _ = escalated_tx.send(reason);
            }
        }
    };
    pazar_app::serve(
        &args.bind,
        state,
        HttpConfig {
            max_body_bytes: args.max_body_bytes,
            idle_timeout: args.idle_timeout,
            stripe_webhook_secret: args
                .stripe_webhook_secret
                .clone()
                .map(pazar_payments::webhooks::WebhookSecret),
            internal_token,
        },
        |addr| {
            tracing::info!(%addr, database = %pazar_store::redact(url), roles = %args.roles, "pazar listening");
            // Tests and scripts read this line to find the port.
            println!("pazar listening on http://{addr}");
            let _ = std::io::stdout().flush();
        },
        shutdown,
    )
    .await?;
    shop.shutdown().await;
    if let Ok(reason) = escalated_rx.try_recv() {
        anyhow::bail!("the supervision tree gave up: {reason}");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn seed(url: &str, count: u64) -> anyhow::Result<()> {
    let products = pazar_store::connect_and_migrate(url).await?.products;
    let catalog = pazar_catalog::Catalog::new(products, Default::default(), Default::default());
    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} products ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let batch = uuid::Uuid::now_v7().simple().to_string();
    let batch = &batch[batch.len() - 8..];
    const ADJECTIVES: [&str; 8] = [
        "Sturdy", "Handmade", "Classic", "Organic", "Compact", "Deluxe", "Vintage", "Everyday",
    ];
    const NOUNS: [&str; 8] = [
        "Teapot", "Backpack", "Notebook", "Lamp", "Scarf", "Mug", "Chair", "Kite",
    ];
    const CHUNK: u64 = 500;
    for start in (0..count).step_by(CHUNK as usize) {
        let products = (start..(start + CHUNK).min(count))
            .map(|i| {
                let adjective = ADJECTIVES[(i % 8) as usize];
                let noun = NOUNS[((i / 8) % 8) as usize];
                NewProduct {
                    name: format!("{adjective} {noun} #{i}"),
                    description: format!(
                        "A {} {} from the demo catalog.",
                        adjective.to_lowercase(),
                        noun.to_lowercase()
                    ),
                    sku: format!("DEMO-{batch}-{i:06}"),
                    price_amount: 199 + (i as i64 * 137) % 9_800,
                    price_currency: "EUR".into(),
                    stock: (i as i64 * 7) % 120,
                }
            })
            .collect::<Vec<_>>();
        let created = products.len() as u64;
        catalog.create_many(products).await?;
        bar.inc(created);
    }
    bar.finish();
    println!("{count} demo products created");
    Ok(())
}
