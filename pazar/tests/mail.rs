//! E-mail notifications end to end: the real server sends over SMTP to a real SMTP
//! server on loopback (aiosmtpd, `tools/smtp_sink.py`, run with the Python that
//! `.ci/run` exports as `PAZAR_TEST_PYTHON`), or writes `.eml` files in the embedded
//! default. Every received message is parsed (mail-parser) and checked: recipient,
//! subject, both parts, the figures, escaping.

mod common;

use common::smtp::{wait_for_mails, Mail, SmtpSink};
use common::{order_status_becomes, pay_locally, start_payment, Backend, TestServer};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

on_both_databases!(
    every_event_mails_its_customer_once,
    an_expired_order_mails_that_it_closed,
    mails_wait_for_a_stopped_smtp_server_and_survive_a_crash,
    a_refused_mail_is_listed_as_failed_and_an_admin_retry_delivers_it,
    the_embedded_default_writes_one_eml_per_mail,
    credentials_go_only_over_starttls_to_a_trusted_server,
);

fn to<'a>(mails: &'a [Mail], address: &str) -> Vec<&'a Mail> {
    mails.iter().filter(|m| m.to == address).collect()
}

/// Mail settings for a server sending to `sink`, retrying quickly.
fn smtp_env(sink: &SmtpSink) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_URL", sink.url()),
        ("PAZAR_MAIL_RETRY_BASE", "100ms".into()),
        ("PAZAR_MAIL_RETRY_MAX", "300ms".into()),
        ("PAZAR_SHOP_NAME", "Pazar Test Shop".into()),
        ("PAZAR_PUBLIC_URL", "http://shop.test".into()),
        ("PAZAR_SWEEP_INTERVAL", "100ms".into()),
    ]
}

async fn start_server(backend: Backend, env: &[(&'static str, String)]) -> TestServer {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::start_with(backend, &env).await
}

/// An order of `quantity` units of `product` by the customer holding `token`.
async fn order(server: &TestServer, token: &str, product: &Value, quantity: i64) -> Value {
    server
        .post(
            "/api/v1/cart/items",
            Some(token),
            json!({"product_id": product["id"], "quantity": quantity}),
        )
        .await
        .ok(200);
    server
        .post("/api/v1/orders", Some(token), json!({}))
        .await
        .ok(201)
        .clone()
}

async fn pay(server: &TestServer, token: &str, order: &Value, card: &str) -> Value {
    let payment = start_payment(server, token, order).await;
    let secret = payment["client_secret"].as_str().unwrap();
    pay_locally(server, secret, card).await.ok(200).clone()
}

/// The admin's view of the queue.
async fn queue(server: &TestServer, admin: &str, status: &str) -> Vec<Value> {
    server
        .get(
            &format!("/api/v1/admin/emails?status={status}&limit=100"),
            Some(admin),
        )
        .await
        .ok(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn every_event_mails_its_customer_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let server = start_server(backend, &smtp_env(&sink)).await;
    let admin = server.admin_token().await;
    let product = server
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"name": "<script>alert(1)</script>", "description": "d", "sku": "XSS-1",
                   "price": {"amount": 1250, "currency": "EUR"}, "stock": 10}),
        )
        .await
        .ok(201)
        .clone();
    let mia = server.customer_token("mia@example.com").await;

    // Order A: declined, paid, refunded. Order B: cancelled.
    let a = order(&server, &mia, &product, 2).await;
    assert_eq!(
        pay(&server, &mia, &a, "4000000000000002").await["status"],
        "failed"
    );
    assert_eq!(
        pay(&server, &mia, &a, "4242424242424242").await["status"],
        "succeeded"
    );
    order_status_becomes(&server, &mia, &a, "paid").await;
    let a_id = a["id"].as_str().unwrap();
    server
        .post(
            &format!("/api/v1/admin/orders/{a_id}/refund"),
            Some(&admin),
            json!({}),
        )
        .await
        .ok(200);
    let b = order(&server, &mia, &product, 1).await;
    let b_id = b["id"].as_str().unwrap();
    server
        .post(
            &format!("/api/v1/orders/{b_id}/cancel"),
            Some(&mia),
            json!({}),
        )
        .await
        .ok(200);

    sink.wait_until("seven mails for mia", |mails| {
        to(mails, "mia@example.com").len() >= 7
    })
    .await;
    // Once everything queued has been sent, nothing more can arrive.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !queue(&server, &admin, "queued").await.is_empty() {
        assert!(Instant::now() < deadline, "the queue never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = sink.received();
    let mia_mails = to(&all, "mia@example.com");
    let subjects: Vec<&str> = mia_mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        mia_mails.len(),
        7,
        "exactly one mail per event: {subjects:#?}"
    );
    let one = |prefix: &str| -> &Mail {
        let found: Vec<&&Mail> = mia_mails
            .iter()
            .filter(|m| m.subject.starts_with(prefix))
            .collect();
        assert_eq!(found.len(), 1, "one {prefix:?} mail: {subjects:#?}");
        found[0]
    };
    let welcome = one("Welcome to Pazar Test Shop");
    assert!(welcome.text.contains("Hello Customer"));
    let received_a = one(&format!(
        "Your order {a_id} at Pazar Test Shop: please pay €25.00"
    ));
    assert!(received_a
        .text
        .contains("2 × <script>alert(1)</script> at €12.50 = €25.00"));
    assert!(received_a.text.contains("Total: €25.00"));
    assert!(received_a
        .text
        .contains(&format!("http://shop.test/pay/{a_id}")));
    assert!(received_a.html.contains("&lt;script&gt;alert(1)&lt;"));
    assert!(!received_a.html.contains("<script>"), "{}", received_a.html);
    assert!(received_a.raw.contains("multipart/alternative"));
    let failed = one(&format!("Payment failed for order {a_id}"));
    assert!(failed.text.contains("card_declined"), "{}", failed.text);
    assert!(failed
        .text
        .contains(&format!("http://shop.test/pay/{a_id}")));
    let receipt = one(&format!("Payment received for order {a_id}: €25.00"));
    assert!(receipt.html.contains("€25.00"));
    one(&format!("Refund of €25.00 for order {a_id}"));
    one(&format!(
        "Your order {b_id} at Pazar Test Shop: please pay €12.50"
    ));
    let closed = one(&format!("Order {b_id} was cancelled"));
    assert!(closed.text.contains("went back on the shelf"));
    // The admin's own welcome went out too, to the admin.
    assert_eq!(to(&all, common::ADMIN_EMAIL).len(), 1);
    assert_eq!(queue(&server, &admin, "failed").await.len(), 0);
    server.finish().await;
}

async fn an_expired_order_mails_that_it_closed(backend: Backend) {
    let sink = SmtpSink::start().await;
    let mut env = smtp_env(&sink);
    env.push(("PAZAR_ORDER_TTL", "1s".into()));
    let server = start_server(backend, &env).await;
    let admin = server.admin_token().await;
    let product = server.create_product(&admin, "EXP-1", 5).await;
    let eva = server.customer_token("eva@example.com").await;
    let placed = order(&server, &eva, &product, 3).await;
    order_status_becomes(&server, &eva, &placed, "expired").await;
    let id = placed["id"].as_str().unwrap();
    let mails = sink
        .wait_until("the order-closed mail", |mails| {
            mails
                .iter()
                .any(|m| m.subject == format!("Order {id} was expired"))
        })
        .await;
    let closed: Vec<&Mail> = mails
        .iter()
        .filter(|m| m.subject.contains("was expired"))
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].to, "eva@example.com");
    assert!(closed[0].text.contains("because it was not paid by"));
    assert!(closed[0]
        .text
        .contains("3 × Product EXP-1 at €12.50 = €37.50"));
    server.finish().await;
}

async fn mails_wait_for_a_stopped_smtp_server_and_survive_a_crash(backend: Backend) {
    let mut sink = SmtpSink::start().await;
    let mut env = smtp_env(&sink);
    env.push(("PAZAR_MAIL_MAX_ATTEMPTS", "1000".into()));
    let server = start_server(backend, &env).await;
    let admin = server.admin_token().await;
    sink.wait_until("the admin's welcome", |m| m.len() == 1)
        .await;
    sink.stop().await;
    // A burst of sign-ups while the SMTP server is down.
    let addresses: Vec<String> = (0..6).map(|i| format!("burst{i}@example.com")).collect();
    for address in &addresses {
        server.customer_token(address).await;
    }
    // Every one of them has been tried and is waiting for a retry.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let queued = queue(&server, &admin, "queued").await;
        let tried = queued
            .iter()
            .filter(|m| m["attempts"].as_i64().unwrap() >= 1 && m["last_error"].is_string())
            .count();
        if tried == addresses.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every mail was tried: {queued:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The server dies with the mails still queued, and comes back.
    let mut server = server;
    server.kill().await;
    server.restart().await;
    sink.launch(false).await;
    sink.wait_until("every burst mail", |mails| {
        addresses.iter().all(|a| !to(mails, a).is_empty())
    })
    .await;
    let admin = server.admin_token().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !queue(&server, &admin, "queued").await.is_empty() {
        assert!(Instant::now() < deadline, "the queue never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = sink.received();
    for address in &addresses {
        assert_eq!(to(&all, address).len(), 1, "one welcome for {address}");
    }
    assert_eq!(all.len(), addresses.len() + 1, "nothing sent twice");
    server.finish().await;
}

async fn a_refused_mail_is_listed_as_failed_and_an_admin_retry_delivers_it(backend: Backend) {
    let mut sink = SmtpSink::start().await;
    let server = start_server(backend, &smtp_env(&sink)).await;
    let admin = server.admin_token().await;
    sink.wait_until("the admin's welcome", |m| m.len() == 1)
        .await;
    sink.stop().await;
    sink.launch(true).await;
    server.customer_token("ria@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let failed = loop {
        let failed = queue(&server, &admin, "failed").await;
        if let Some(mail) = failed.iter().find(|m| m["recipient"] == "ria@example.com") {
            break mail.clone();
        }
        assert!(Instant::now() < deadline, "the refused mail never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A permanent refusal is not retried: one attempt.
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["kind"], "welcome");
    assert!(
        failed["last_error"].as_str().unwrap().contains("550"),
        "{failed}"
    );
    let id = failed["id"].as_str().unwrap();
    // Only failed mails can be retried; bad ids are client errors.
    server
        .post(
            "/api/v1/admin/emails/not-a-uuid/retry",
            Some(&admin),
            json!({}),
        )
        .await
        .problem(400);
    let customer = server.customer_token("someone@example.com").await;
    server
        .post(
            &format!("/api/v1/admin/emails/{id}/retry"),
            Some(&customer),
            json!({}),
        )
        .await
        .problem(403);
    server
        .get("/api/v1/admin/emails?status=lost", Some(&admin))
        .await
        .problem(422);

    sink.stop().await;
    sink.launch(false).await;
    let retried = server
        .post(
            &format!("/api/v1/admin/emails/{id}/retry"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(retried.ok(200)["status"], "queued");
    let mails = sink
        .wait_until("ria's welcome after the retry", |mails| {
            !to(mails, "ria@example.com").is_empty()
        })
        .await;
    assert_eq!(to(&mails, "ria@example.com").len(), 1);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sent = queue(&server, &admin, "sent").await;
        if sent.iter().any(|m| m["id"] == id) {
            break;
        }
        assert!(Instant::now() < deadline, "the retried mail is not sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
        .post(
            &format!("/api/v1/admin/emails/{id}/retry"),
            Some(&admin),
            json!({}),
        )
        .await
        .problem(409);
    server.finish().await;
}

async fn the_embedded_default_writes_one_eml_per_mail(backend: Backend) {
    let server = TestServer::start_with(backend, &[("PAZAR_SWEEP_INTERVAL", "100ms")]).await;
    let folder = server.data_dir().join("mail");
    server.customer_token("fay@example.com").await;
    let mails = wait_for_mails(&folder, "two .eml files", |mails| mails.len() == 2).await;
    let fay = to(&mails, "fay@example.com");
    assert_eq!(fay.len(), 1);
    assert_eq!(fay[0].subject, "Welcome to Pazar, Customer");
    assert!(fay[0].html.contains("Hello Customer"));
    assert_eq!(to(&mails, common::ADMIN_EMAIL).len(), 1);
    server.finish().await;
}

/// A private CA and a server certificate for 127.0.0.1 signed by it (openssl), as
/// (ca.pem, cert.pem, key.pem).
fn private_ca_and_server_cert(folder: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let file = |name: &str| folder.join(name);
    let openssl = |args: &[&str]| {
        let made = std::process::Command::new("openssl")
            .args(args)
            .current_dir(folder)
            .output()
            .expect("openssl (installed by .ci/run)");
        assert!(made.status.success(), "openssl {args:?}: {made:?}");
    };
    let days = ["-days", "2"];
    openssl(
        &[
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            ][..],
            &["-out", "ca.pem", "-subj", "/CN=Pazar Test CA"],
            &days,
        ]
        .concat(),
    );
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        file("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
            ][..],
            &[
                "-CAcreateserial",
                "-out",
                "cert.pem",
                "-extfile",
                "server.ext",
            ],
            &days,
        ]
        .concat(),
    );
    (file("ca.pem"), file("cert.pem"), file("key.pem"))
}

async fn credentials_go_only_over_starttls_to_a_trusted_server(backend: Backend) {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca_and_server_cert(certs.path());
    // The server refuses mail before STARTTLS and AUTH before TLS.
    let sink = SmtpSink::start_with(&[
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
        "--user".into(),
        "pazar".into(),
        "--password".into(),
        "s3cret".into(),
    ])
    .await;
    let url = format!("smtp://pazar:s3cret@127.0.0.1:{}", sink.port);
    let mut env = smtp_env(&sink);
    env.retain(|(key, _)| *key != "SMTP_URL");
    env.push(("SMTP_URL", url.clone()));

    // Without the private CA the certificate is not trusted: nothing is sent.
    let untrusting = start_server(backend, &env).await;
    let admin = untrusting.admin_token().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let error = loop {
        let queued = queue(&untrusting, &admin, "queued").await;
        if let Some(error) = queued.iter().find_map(|m| m["last_error"].as_str()) {
            break error.to_owned();
        }
        assert!(Instant::now() < deadline, "no failed attempt: {queued:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        error.to_lowercase().contains("certificate"),
        "a TLS refusal, not a plaintext send: {error}"
    );
    assert!(sink.received().is_empty());
    untrusting.finish().await;

    // Trusting the CA: STARTTLS, AUTH, delivery.
    env.push(("SMTP_CA_FILE", ca.display().to_string()));
    let server = start_server(backend, &env).await;
    server.customer_token("tia@example.com").await;
    let mails = sink
        .wait_until("tia's welcome over STARTTLS", |mails| {
            !to(mails, "tia@example.com").is_empty()
        })
        .await;
    assert_eq!(to(&mails, "tia@example.com").len(), 1);
    server.finish().await;
}
