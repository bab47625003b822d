//! Mail adapters: the templates that render notices, and the lettre transports
//! that send them.
//!
//! - [`Templates`] renders a [`Notice`] from the files in `notifications/templates/`
//!   (compiled into the binary): `<kind>.subject.txt`, `<kind>.txt` and
//!   `<kind>.html`, with minijinja. HTML templates escape every value, so a
//!   product named `<script>` arrives as text; the plain-text part is not escaped.
//! - [`LettreTransport`] sends a rendered mail as multipart/alternative over SMTP
//!   (`SMTP_URL`), or, in the embedded default, writes it as an `.eml` file under
//!   `data/mail/`. SMTP 5xx answers are permanent failures; connection problems and
//!   4xx answers are transient and retried by the notifier.

use crate::mail::{
    MailKind, MailRenderer, MailTransport, Notice, QueuedMail, RenderedMail, SendFailure,
};
use async_trait::async_trait;
use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::Environment;
use pazar_actors::DomainError;
use std::path::PathBuf;
use std::time::Duration;

/// Why mail could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    /// `SMTP_URL` does not parse or names an unknown scheme.
    #[error("SMTP_URL: {0}")]
    SmtpUrl(String),
    /// The sender address does not parse.
    #[error("PAZAR_MAIL_FROM: {0}")]
    From(String),
    /// A template does not parse.
    #[error("mail template {name}: {error}")]
    Template {
        /// Which file.
        name: &'static str,
        /// What is wrong.
        error: String,
    },
    /// The mail folder cannot be created.
    #[error("mail folder {0}: {1}")]
    Folder(PathBuf, std::io::Error),
}

/// The template files, compiled in.
const TEMPLATE_FILES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("lines.html", include_str!("../templates/lines.html")),
    ("lines.txt", include_str!("../templates/lines.txt")),
    (
        "welcome.subject.txt",
        include_str!("../templates/welcome.subject.txt"),
    ),
    ("welcome.txt", include_str!("../templates/welcome.txt")),
    ("welcome.html", include_str!("../templates/welcome.html")),
    (
        "order_received.subject.txt",
        include_str!("../templates/order_received.subject.txt"),
    ),
    (
        "order_received.txt",
        include_str!("../templates/order_received.txt"),
    ),
    (
        "order_received.html",
        include_str!("../templates/order_received.html"),
    ),
    (
        "payment_receipt.subject.txt",
        include_str!("../templates/payment_receipt.subject.txt"),
    ),
    (
        "payment_receipt.txt",
        include_str!("../templates/payment_receipt.txt"),
    ),
    (
        "payment_receipt.html",
        include_str!("../templates/payment_receipt.html"),
    ),
    (
        "payment_failed.subject.txt",
        include_str!("../templates/payment_failed.subject.txt"),
    ),
    (
        "payment_failed.txt",
        include_str!("../templates/payment_failed.txt"),
    ),
    (
        "payment_failed.html",
        include_str!("../templates/payment_failed.html"),
    ),
    (
        "order_closed.subject.txt",
        include_str!("../templates/order_closed.subject.txt"),
    ),
    (
        "order_closed.txt",
        include_str!("../templates/order_closed.txt"),
    ),
    (
        "order_closed.html",
        include_str!("../templates/order_closed.html"),
    ),
    (
        "refund_confirmation.subject.txt",
        include_str!("../templates/refund_confirmation.subject.txt"),
    ),
    (
        "refund_confirmation.txt",
        include_str!("../templates/refund_confirmation.txt"),
    ),
    (
        "refund_confirmation.html",
        include_str!("../templates/refund_confirmation.html"),
    ),
];

/// Renders notices with the shop's name and public address.
pub struct Templates {
    env: Environment<'static>,
    shop_name: String,
    base_url: String,
}

impl Templates {
    /// Parses every template now, so a broken one stops the server at start.
    pub fn new(shop_name: &str, base_url: &str) -> Result<Self, MailSetupError> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATE_FILES {
            env.add_template(name, source)
                .map_err(|e| MailSetupError::Template {
                    name,
                    error: e.to_string(),
                })?;
        }
        Ok(Self {
            env,
            shop_name: shop_name.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    fn render_file(&self, name: &str, context: &serde_json::Value) -> Result<String, DomainError> {
        self.env
            .get_template(name)
            .and_then(|template| template.render(context))
            .map_err(|e| DomainError::Render {
                template: name.to_owned(),
                message: e.to_string(),
            })
    }
}

impl MailRenderer for Templates {
    fn render(&self, notice: &Notice) -> Result<RenderedMail, DomainError> {
        let mut context = notice.context.clone();
        if let Some(fields) = context.as_object_mut() {
            fields.insert("shop_name".into(), self.shop_name.clone().into());
            fields.insert("base_url".into(), self.base_url.clone().into());
            fields.entry("name").or_insert(notice.name.clone().into());
            if let Some(order) = fields.get("order_id").and_then(|id| id.as_str()) {
                let pay_url = format!("{}/pay/{order}", self.base_url);
                fields.insert("pay_url".into(), pay_url.into());
            }
        }
        let kind = notice.kind.as_str();
        let subject = self.render_file(&format!("{kind}.subject.txt"), &context)?;
        Ok(RenderedMail {
            // One line, whatever a customer's name contains.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self.render_file(&format!("{kind}.txt"), &context)?,
            html: self.render_file(&format!("{kind}.html"), &context)?,
        })
    }
}

/// Every kind has its three templates (checked by a unit test and at start).
pub fn template_names(kind: MailKind) -> [String; 3] {
    let kind = kind.as_str();
    [
        format!("{kind}.subject.txt"),
        format!("{kind}.txt"),
        format!("{kind}.html"),
    ]
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

/// Sends mail over SMTP or into `.eml` files.
pub struct LettreTransport {
    transport: Transport,
    from: Mailbox,
}

impl LettreTransport {
    /// SMTP to `smtp_url`. `smtp://` uses STARTTLS: required when the URL carries
    /// credentials (they never cross the network in clear), opportunistic otherwise;
    /// `?tls=required|opportunistic` chooses explicitly; `smtps://` is TLS from the
    /// first byte. `extra_root` (PEM) is trusted besides the public roots, for a
    /// relay with a private CA.
    pub fn smtp(
        smtp_url: &str,
        from: &str,
        extra_root: Option<&[u8]>,
    ) -> Result<Self, MailSetupError> {
        let bad_url = |e: &dyn std::fmt::Display| MailSetupError::SmtpUrl(e.to_string());
        let builder =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url).map_err(|e| bad_url(&e))?;
        let (scheme, rest) = smtp_url.split_once("://").unwrap_or(("", smtp_url));
        let (authority, query) = match rest.split_once('?') {
            Some((authority, query)) => (authority, query),
            None => (rest, ""),
        };
        let with_credentials = authority.contains('@');
        let host = authority
            .rsplit('@')
            .next()
            .and_then(|rest| rest.split([':', '/']).next())
            .unwrap_or_default()
            .to_owned();
        let tls_choice = query.split('&').find_map(|pair| pair.strip_prefix("tls="));
        let mut parameters = TlsParameters::builder(host);
        if let Some(pem) = extra_root {
            let root = Certificate::from_pem(pem).map_err(|e| bad_url(&e))?;
            parameters = parameters.add_root_certificate(root);
        }
        let parameters = parameters.build().map_err(|e| bad_url(&e))?;
        let tls = match (scheme, tls_choice) {
            ("smtps", _) => Tls::Wrapper(parameters),
            (_, Some("required")) => Tls::Required(parameters),
            (_, Some("opportunistic")) => Tls::Opportunistic(parameters),
            _ if with_credentials => Tls::Required(parameters),
            _ => Tls::Opportunistic(parameters),
        };
        let transport = builder
            .tls(tls)
            .timeout(Some(Duration::from_secs(10)))
            .build();
        Ok(Self {
            transport: Transport::Smtp(transport),
            from: parse_from(from)?,
        })
    }

    /// One `.eml` file per mail under `folder` (created if missing).
    pub fn files(folder: PathBuf, from: &str) -> Result<Self, MailSetupError> {
        std::fs::create_dir_all(&folder).map_err(|e| MailSetupError::Folder(folder.clone(), e))?;
        Ok(Self {
            transport: Transport::File(AsyncFileTransport::new(folder)),
            from: parse_from(from)?,
        })
    }

    fn message(&self, mail: &QueuedMail) -> Result<Message, SendFailure> {
        let permanent = |message: String| SendFailure {
            permanent: true,
            message,
        };
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| permanent(format!("recipient {}: {e}", mail.recipient)))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            // Stable per mail: a resend after a crash can be recognised as the same.
            .message_id(Some(format!("<{}@pazar.mail>", mail.id)))
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| permanent(format!("building the message: {e}")))
    }
}

fn parse_from(from: &str) -> Result<Mailbox, MailSetupError> {
    from.parse()
        .map_err(|e: lettre::address::AddressError| MailSetupError::From(e.to_string()))
}

#[async_trait]
impl MailTransport for LettreTransport {
    async fn send(&self, mail: &QueuedMail) -> Result<(), SendFailure> {
        let message = self.message(mail)?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendFailure {
                        permanent: e.is_permanent(),
                        message: e.to_string(),
                    })
            }
            Transport::File(files) => {
                files
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendFailure {
                        permanent: false,
                        message: e.to_string(),
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every address registration accepts is one the mailer can write to: random
    /// addresses over the whole alphabet of the rule, and its edge cases.
    #[test]
    fn every_address_registration_accepts_the_mailer_accepts() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let alphabet: Vec<char> = "abcz09.!#$%&'*+/=?^_`{|}~-@\"<> ‹›é\u{0}\u{7f}"
            .chars()
            .collect();
        let mut rng = StdRng::seed_from_u64(7);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = rng.gen_range(3..24);
            let raw: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let raw = format!("{raw}@a.test");
            if let Ok(email) = pazar_users::Email::parse(&raw) {
                accepted += 1;
                assert!(
                    email.as_str().parse::<lettre::Address>().is_ok(),
                    "{raw:?} registers but the mailer refuses it"
                );
            }
        }
        assert!(
            accepted > 100,
            "the generator hardly produced valid addresses"
        );
        let long_local = format!("{}@example.com", "a".repeat(64));
        let long_label = format!("ada@{}.com", "b".repeat(63));
        for edge in [long_local.as_str(), long_label.as_str(), "a@b-c.d"] {
            let email = pazar_users::Email::parse(edge).unwrap();
            assert!(email.as_str().parse::<lettre::Address>().is_ok(), "{edge}");
        }
    }

    fn notice(kind: MailKind, context: serde_json::Value) -> Notice {
        Notice {
            event_id: Default::default(),
            kind,
            to: "ada@example.com".into(),
            name: "Ada".into(),
            context,
        }
    }

    #[test]
    fn every_kind_has_its_templates() {
        let templates = Templates::new("Pazar", "http://shop.test/").unwrap();
        for kind in MailKind::ALL {
            for name in template_names(kind) {
                assert!(templates.env.get_template(&name).is_ok(), "{name}");
            }
        }
    }

    #[test]
    fn html_escapes_what_people_typed_and_text_does_not() {
        let templates = Templates::new("Pazar", "http://shop.test").unwrap();
        let rendered = templates
            .render(&notice(
                MailKind::OrderReceived,
                json!({"name": "Ada", "order_id": "o-1", "total": "€2.50", "expires_at": "soon",
                       "lines": [{"name": "<script>alert(1)</script>", "quantity": 1,
                                  "unit_price": "€2.50", "total": "€2.50"}]}),
            ))
            .unwrap();
        assert!(rendered
            .html
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered
            .text
            .contains("1 × <script>alert(1)</script> at €2.50"));
        assert!(rendered.text.contains("http://shop.test/pay/o-1"));
        assert_eq!(
            rendered.subject,
            "Your order o-1 at Pazar: please pay €2.50"
        );
    }

    #[test]
    fn a_subject_stays_one_line() {
        let templates = Templates::new("Pazar", "http://shop.test").unwrap();
        let rendered = templates
            .render(&notice(
                MailKind::Welcome,
                json!({"name": "Ada\r\nBcc: evil@example.com"}),
            ))
            .unwrap();
        assert_eq!(
            rendered.subject,
            "Welcome to Pazar, Ada Bcc: evil@example.com"
        );
    }
}
