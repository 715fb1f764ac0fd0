//! Notification channels and their delivery loop.
//!
//! Channels are tables in `config.toml`; the severity of a notification picks them:
//!
//! ```toml
//! [notify.ops]                      # a generic JSON webhook, e.g. an n8n workflow
//! kind = "webhook"
//! url = "http://127.0.0.1:5678/webhook/steward"
//! secret_file = "secrets/notify-ops"  # HMAC key of `Steward-Signature` (relative: to the home)
//! severities = ["warning", "critical"] # default: every severity
//!
//! [notify.chat]                     # a Slack-compatible incoming webhook
//! kind = "slack"
//! url = "https://hooks.slack.com/services/..."
//! severities = ["critical"]
//! ```
//!
//! The local inbox always gets everything (`steward notifications`). `steward serve` runs
//! [`deliver`]: it sends what the outbox holds, and retries a failed attempt with backoff
//! (1 s doubling to 5 min) until the receiver takes it or the notification is a day old.
//! Every attempt carries the notification id (`Steward-Delivery` header and `id` field), so
//! a receiver that sees an id twice drops the repeat.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use steward_agent::inbox::Route;
use steward_agent::outbox::{self, Due, Outbox};
use steward_protocol::Timestamp;
use steward_tools::Clock;

/// The table of `config.toml` that holds the channels.
pub const CONFIG_TABLE: &str = "notify";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelDef {
    kind: String,
    url: String,
    secret_file: Option<String>,
    #[serde(default)]
    severities: Vec<String>,
}

/// Where a channel sends, and how.
#[derive(Debug, Clone)]
pub enum Target {
    /// A JSON body signed like inbound hooks: `Steward-Signature: t=<unix>,v1=<hex>`.
    Webhook { url: String, secret: Vec<u8> },
    /// Slack's incoming-webhook body (`{"text": ...}`).
    Slack { url: String },
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub target: Target,
    pub severities: Vec<String>,
}

/// The configured push channels.
#[derive(Debug, Clone, Default)]
pub struct Channels(pub BTreeMap<String, Channel>);

const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

impl Channels {
    /// The `[notify.*]` tables of `<home>/config.toml`; none when the file or table is
    /// absent. Errors name the channel and field.
    pub fn load(home: &Path) -> Result<Channels> {
        let path = home.join("config.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(Channels::default());
        };
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        let Some(notify) = table.get(CONFIG_TABLE) else {
            return Ok(Channels::default());
        };
        let defs: BTreeMap<String, ChannelDef> = notify
            .clone()
            .try_into()
            .with_context(|| format!("{}: [{CONFIG_TABLE}.<name>] tables", path.display()))?;
        let mut channels = BTreeMap::new();
        for (name, def) in defs {
            let channel = channel(home, &name, def)
                .with_context(|| format!("{}: [{CONFIG_TABLE}.{name}]", path.display()))?;
            channels.insert(name, channel);
        }
        Ok(Channels(channels))
    }

    /// What the inbox needs to queue deliveries.
    pub fn routes(&self) -> Vec<Route> {
        self.0
            .values()
            .map(|c| Route {
                channel: c.name.clone(),
                severities: c.severities.clone(),
            })
            .collect()
    }
}

fn channel(home: &Path, name: &str, def: ChannelDef) -> Result<Channel> {
    if name == "inbox"
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        bail!("the channel name must be letters, digits, - and _, and not `inbox` (always on)");
    }
    if !(def.url.starts_with("http://") || def.url.starts_with("https://")) {
        bail!("url {:?} must be an http:// or https:// URL", def.url);
    }
    for s in &def.severities {
        if !SEVERITIES.contains(&s.as_str()) {
            bail!("severity {s:?} is not one of info, warning, critical");
        }
    }
    let target = match def.kind.as_str() {
        "webhook" => {
            let Some(file) = def.secret_file else {
                bail!("a webhook channel needs secret_file: the key its Steward-Signature is made with");
            };
            let path = home.join(&file);
            let secret = std::fs::read(&path)
                .with_context(|| format!("cannot read secret_file {}", path.display()))?;
            let secret = secret.trim_ascii().to_vec();
            if secret.len() < 16 {
                bail!(
                    "secret_file {} holds {} bytes; use at least 16 (e.g. `openssl rand -hex 32`)",
                    path.display(),
                    secret.len()
                );
            }
            Target::Webhook {
                url: def.url,
                secret,
            }
        }
        "slack" => {
            if def.secret_file.is_some() {
                bail!("slack channels are not signed; remove secret_file");
            }
            Target::Slack { url: def.url }
        }
        other => bail!("kind {other:?} is not webhook or slack"),
    };
    Ok(Channel {
        name: name.to_string(),
        target,
        severities: def.severities,
    })
}

/// How the delivery loop paces itself. The defaults are the documented ones.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub backoff_cap: Duration,
    /// A notification still undelivered this long after it was posted is given up.
    pub give_up_after: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// How often the outbox is read without a wake-up (posts by other processes).
    pub poll: Duration,
    /// Attempts in flight at once.
    pub parallel: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            backoff_cap: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(250),
            parallel: 8,
        }
    }
}

/// Sends due deliveries until the task is aborted. An attempt cut short by the abort is
/// sent again after the next start: at least once, never silently dropped.
pub async fn deliver(
    outbox: Outbox,
    channels: Arc<Channels>,
    clock: Arc<dyn Clock>,
    settings: DeliverySettings,
) {
    let client = match reqwest::Client::builder()
        .timeout(settings.timeout)
        .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; notifications stay queued");
            return;
        }
    };
    loop {
        let due = match outbox.due(clock.now(), 256).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox; trying again");
                outbox::wait(settings.poll).await;
                continue;
            }
        };
        if due.is_empty() {
            outbox::wait(settings.poll).await;
            continue;
        }
        futures_util::stream::iter(due)
            .for_each_concurrent(settings.parallel, |d| {
                let (outbox, channels, clock, client, settings) =
                    (&outbox, &channels, &clock, &client, &settings);
                async move {
                    let sent = match channels.0.get(&d.channel) {
                        Some(c) => send(client, c, &d, clock.now()).await,
                        None => Err(format!(
                            "channel {:?} is no longer configured in config.toml",
                            d.channel
                        )),
                    };
                    if let Err(e) = record(outbox, &d, sent, clock.now(), settings).await {
                        tracing::warn!(error = %e, notification = %d.notification.id, "cannot record a delivery attempt");
                    }
                }
            })
            .await;
    }
}

async fn record(
    outbox: &Outbox,
    d: &Due,
    sent: std::result::Result<(), String>,
    now: Timestamp,
    settings: &DeliverySettings,
) -> steward_agent::Result<()> {
    let id = &d.notification.id;
    match sent {
        Ok(()) => {
            tracing::info!(notification = %id, channel = %d.channel, attempts = d.attempts + 1, "notification delivered");
            outbox.delivered(d, now).await
        }
        Err(e) if now.0 - d.created_ms >= settings.give_up_after.as_millis() as i64 => {
            tracing::error!(notification = %id, channel = %d.channel, error = %e, "notification given up");
            outbox.failed(d, now, &e).await
        }
        Err(e) => {
            let wait = outbox::backoff(d.attempts + 1, settings.backoff_cap);
            tracing::warn!(notification = %id, channel = %d.channel, error = %e, retry_in = ?wait, "notification not delivered; retrying");
            outbox
                .retry(d, Timestamp(now.0 + wait.as_millis() as i64), &e)
                .await
        }
    }
}

/// One attempt: Ok when the receiver answered 2xx.
async fn send(
    client: &reqwest::Client,
    channel: &Channel,
    d: &Due,
    now: Timestamp,
) -> std::result::Result<(), String> {
    let n = &d.notification;
    let request = match &channel.target {
        Target::Webhook { url, secret } => {
            let body = json!({
                "id": n.id,
                "at": rfc3339(n.at_ms),
                "severity": n.severity,
                "message": n.message,
                "source": n.source,
                "incident": n.incident,
                "attempt": d.attempts + 1,
            })
            .to_string();
            let signature = steward_server::hooks::sign(secret, now.0 / 1000, body.as_bytes());
            client
                .post(url)
                .header("content-type", "application/json")
                .header("steward-signature", signature)
                .header("steward-delivery", &n.id)
                .body(body)
        }
        Target::Slack { url } => client
            .post(url)
            .header("steward-delivery", &n.id)
            .json(&slack_body(d)),
    };
    let response = request
        .send()
        .await
        .map_err(|e| format!("{}: {e}", channel.name))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    Err(format!("{} answered {status}: {text}", channel.name))
}

/// Slack's incoming-webhook message: the severity, the message, and where it came from
/// with the notification id (Slack has no dedupe of its own; a person can spot a repeat).
fn slack_body(d: &Due) -> Value {
    let n = &d.notification;
    let mut footer = format!("{} · {}", n.source, n.id);
    if let Some(i) = &n.incident {
        footer = format!("incident {i} · {footer}");
    }
    json!({
        "text": format!("*{}* {}\n_{footer}_", n.severity.to_uppercase(), n.message),
    })
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(config: &str) -> tempdir::Dir {
        let dir = tempdir::Dir::new();
        std::fs::write(dir.0.join("config.toml"), config).unwrap();
        dir
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!(
                    "steward-channels-{}",
                    uuid::Uuid::new_v4().simple()
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn channels_load_with_their_severities_and_secrets() {
        let home = home_with(
            "listen = \"127.0.0.1:1\"\n\
             [notify.ops]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n\
             secret_file = \"ops.key\"\nseverities = [\"critical\"]\n\
             [notify.chat]\nkind = \"slack\"\nurl = \"https://hooks.example/abc\"\n",
        );
        std::fs::write(home.0.join("ops.key"), "0123456789abcdef0123\n").unwrap();
        let channels = Channels::load(&home.0).unwrap();
        assert_eq!(channels.0.len(), 2);
        match &channels.0["ops"].target {
            Target::Webhook { secret, .. } => assert_eq!(secret, b"0123456789abcdef0123"),
            other => panic!("{other:?}"),
        }
        let routes = channels.routes();
        assert_eq!(routes[0].channel, "chat");
        assert!(routes[0].severities.is_empty());
        assert_eq!(routes[1].severities, ["critical"]);
    }

    #[test]
    fn bad_channels_are_refused_naming_the_channel_and_what_is_wrong() {
        for (config, want) in [
            (
                "[notify.a]\nkind = \"webhook\"\nurl = \"http://x\"\n",
                "needs secret_file",
            ),
            (
                "[notify.a]\nkind = \"mail\"\nurl = \"http://x\"\n",
                "not webhook or slack",
            ),
            (
                "[notify.a]\nkind = \"slack\"\nurl = \"ftp://x\"\n",
                "http:// or https://",
            ),
            (
                "[notify.a]\nkind = \"slack\"\nurl = \"http://x\"\nseverities = [\"page\"]\n",
                "not one of info",
            ),
            (
                "[notify.inbox]\nkind = \"slack\"\nurl = \"http://x\"\n",
                "not `inbox`",
            ),
            (
                "[notify.a]\nkind = \"slack\"\nurl = \"http://x\"\nto = \"me\"\n",
                "unknown field",
            ),
        ] {
            let home = home_with(config);
            let err = format!("{:#}", Channels::load(&home.0).unwrap_err());
            assert!(err.contains(want), "{config}: {err}");
            assert!(err.contains("notify"), "{err}");
        }
    }

    #[test]
    fn a_short_secret_is_refused() {
        let home =
            home_with("[notify.a]\nkind = \"webhook\"\nurl = \"http://x\"\nsecret_file = \"k\"\n");
        std::fs::write(home.0.join("k"), "short").unwrap();
        let err = format!("{:#}", Channels::load(&home.0).unwrap_err());
        assert!(err.contains("at least 16"), "{err}");
    }
}
