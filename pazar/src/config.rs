//! Configuration: command-line flags, then environment variables, then an optional
//! `pazar.toml` (same keys in lower case), then defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The TOML file to read: `--config PATH` or `--config=PATH`, else `PAZAR_CONFIG`,
/// else `pazar.toml`. Looked up before clap runs, because the file feeds clap's
/// environment lookups.
pub fn toml_path(args: &[String]) -> PathBuf {
    let from_flag = args.iter().enumerate().find_map(|(i, arg)| {
        if arg == "--config" {
            args.get(i + 1).cloned()
        } else {
            arg.strip_prefix("--config=").map(str::to_owned)
        }
    });
    from_flag
        .or_else(|| std::env::var("PAZAR_CONFIG").ok())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("pazar.toml"))
}

/// Copies the keys of a `pazar.toml` into the environment, unless the environment
/// already sets them, so that clap's `env` lookups see one merged view.
/// Must run before any thread is started.
pub fn load_toml(path: &Path) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for (key, value) in table {
        let name = key.to_uppercase();
        if std::env::var_os(&name).is_some() {
            continue;
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => anyhow::bail!(
                "{}: {key} must be a string, number or boolean",
                path.display()
            ),
        };
        std::env::set_var(name, value);
    }
    Ok(())
}

/// Parses durations written like `15m`, `30s`, `250ms`, `2h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 15m, 30s or 250ms"))?;
    let duration = match unit.trim() {
        "" | "s" => Duration::from_secs(number),
        "ms" => Duration::from_millis(number),
        "m" => Duration::from_secs(number * 60),
        "h" => Duration::from_secs(number * 3600),
        "d" => Duration::from_secs(number * 86_400),
        other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
    };
    Ok(duration)
}

/// The database URL: `DATABASE_URL`, or the SQLite file under the data directory.
pub fn database_url(configured: Option<&str>, data_dir: &Path) -> String {
    match configured {
        Some(url) if !url.trim().is_empty() => url.to_owned(),
        _ => format!("sqlite://{}", data_dir.join("pazar.db").display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_flag_wins_in_both_spellings() {
        let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            toml_path(&args(&["pazar", "--config", "a.toml", "serve"])),
            Path::new("a.toml")
        );
        assert_eq!(
            toml_path(&args(&["pazar", "--config=b.toml"])),
            Path::new("b.toml")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn default_database_is_sqlite_under_the_data_dir() {
        assert_eq!(
            database_url(None, Path::new("data")),
            "sqlite://data/pazar.db"
        );
        assert_eq!(
            database_url(Some("postgres://h/db"), Path::new("data")),
            "postgres://h/db"
        );
    }
}
