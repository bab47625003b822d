//! The `stripe` provider end to end, against a real Stripe-compatible server on
//! loopback: `localstripe` behind `tools/localstripe_proxy.py` (both started by
//! `.ci/run`, which exports `PAZAR_TEST_STRIPE_API`). The tests play Stripe.js:
//! they create a PaymentMethod and confirm the intent at the Stripe server with
//! the test card; Pazar learns the outcome from localstripe's signed webhook, or,
//! in one test, from reconciliation alone.

mod common;

use common::{order_status_becomes, pending_order, start_payment, stock, Backend, TestServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

on_both_databases!(
    a_payment_confirmed_at_stripe_makes_the_order_paid_then_refunded,
    one_intent_per_order_however_often_it_is_asked,
    a_decline_then_a_success,
    an_expired_order_cancels_its_intent_at_stripe,
    a_lost_webhook_is_made_up_for_by_reconciliation,
);

const SECRET_KEY: &str = "sk_test_pazar";
const PUBLISHABLE_KEY: &str = "pk_test_pazar";

/// The Stripe-compatible server (the proxy in front of localstripe).
fn stripe_api() -> String {
    std::env::var("PAZAR_TEST_STRIPE_API").expect(
        "PAZAR_TEST_STRIPE_API must point at localstripe's proxy: run the tests with .ci/run",
    )
}

/// A client of the Stripe server, as Stripe.js and the dashboard would use it.
struct StripeServer {
    base: String,
    http: reqwest::Client,
}

impl StripeServer {
    fn new() -> Self {
        Self {
            base: stripe_api(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(SECRET_KEY)
            .form(form)
            .send()
            .await
            .expect("the Stripe server answers");
        response.json().await.expect("Stripe answers JSON")
    }

    async fn intent(&self, id: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/payment_intents/{id}"),
            &[],
        )
        .await
    }

    /// What Stripe.js does on the payment page: card → PaymentMethod → confirm.
    async fn confirm_with_card(&self, intent: &str, number: &str) -> Value {
        let method = self
            .call(
                reqwest::Method::POST,
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", number),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2099"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        let method = method["id"].as_str().expect("a payment method id");
        self.call(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{intent}/confirm"),
            &[("payment_method", method)],
        )
        .await
    }

    /// Makes the Stripe server send this server's webhooks, signed with `secret`.
    async fn register_webhook(&self, server: &TestServer, secret: &str) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let response = self
            .http
            .post(format!("{}/_config/webhooks/{id}", self.base))
            .form(&[
                (
                    "url",
                    format!("{}/api/v1/webhooks/stripe", server.base).as_str(),
                ),
                ("secret", secret),
                ("events[]", "payment_intent.succeeded"),
                ("events[]", "payment_intent.payment_failed"),
            ])
            .send()
            .await
            .expect("webhook registration");
        assert!(response.status().is_success(), "{response:?}");
    }
}

/// A server using the Stripe server; with webhooks unless `webhooks` is false.
async fn stripe_shop(backend: Backend, webhooks: bool, extra: &[(&str, &str)]) -> TestServer {
    let webhook_secret = format!("whsec_{}", uuid::Uuid::new_v4().simple());
    let api = stripe_api();
    let mut env = vec![
        ("PAZAR_PAYMENT_PROVIDER", "stripe"),
        ("STRIPE_SECRET_KEY", SECRET_KEY),
        ("STRIPE_PUBLISHABLE_KEY", PUBLISHABLE_KEY),
        ("STRIPE_API_BASE", api.as_str()),
        ("STRIPE_WEBHOOK_SECRET", webhook_secret.as_str()),
    ];
    env.extend_from_slice(extra);
    let server = TestServer::start_with(backend, &env).await;
    if webhooks {
        StripeServer::new()
            .register_webhook(&server, &webhook_secret)
            .await;
    }
    server
}

fn intent_id(payment: &Value) -> String {
    let secret = payment["client_secret"].as_str().unwrap();
    secret.split("_secret_").next().unwrap().to_owned()
}

/// Polls the order's payment until `check` holds (10 s deadline).
async fn payment_becomes(
    server: &TestServer,
    token: &str,
    order: &Value,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let id = order["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let payment = server
            .get(&format!("/api/v1/orders/{id}/payment"), Some(token))
            .await;
        if check(payment.ok(200)) {
            return payment.body.clone();
        }
        assert!(Instant::now() < deadline, "{what}: {}", payment.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Confirms at Stripe with 4242…, then waits until the webhook made the order paid.
async fn pay_with_a_good_card(
    server: &TestServer,
    stripe: &StripeServer,
    token: &str,
    order: &Value,
    intent: &str,
) {
    let confirmed = stripe.confirm_with_card(intent, "4242424242424242").await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    order_status_becomes(server, token, order, "paid").await;
    let paid = payment_becomes(server, token, order, "payment succeeded", |p| {
        p["status"] == "succeeded"
    })
    .await;
    assert_eq!(paid["last_error"], Value::Null);
}

async fn a_payment_confirmed_at_stripe_makes_the_order_paid_then_refunded(backend: Backend) {
    let server = stripe_shop(backend, true, &[]).await;
    let stripe = StripeServer::new();
    let (token, product, order) = pending_order(&server, "sia@example.com", 3).await;
    let payment = start_payment(&server, &token, &order).await;
    assert_eq!(payment["provider"], "stripe");
    assert_eq!(payment["status"], "requires_payment");
    assert_eq!(payment["publishable_key"], PUBLISHABLE_KEY);
    assert_eq!(payment["amount"], order["total"]);
    // The intent at Stripe is for the order's stored total.
    let intent = intent_id(&payment);
    let at_stripe = stripe.intent(&intent).await;
    assert_eq!(at_stripe["amount"], order["total"]["amount"]);
    assert_eq!(
        at_stripe["currency"].as_str().unwrap(),
        order["total"]["currency"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
    );
    assert_eq!(at_stripe["metadata"]["order_id"], order["id"]);
    // The local simulator's endpoint is not there with Stripe.
    server
        .post(
            "/api/v1/payments/local/confirm",
            None,
            json!({"client_secret": payment["client_secret"], "card_number": "4242424242424242",
                   "exp_month": 12, "exp_year": 2099, "cvc": "123"}),
        )
        .await
        .problem(404);

    // The signed webhook arrives and the order is paid; the stock is sold once.
    pay_with_a_good_card(&server, &stripe, &token, &order, &intent).await;
    assert_eq!(stock(&server, &product).await["on_hand"], 7);
    assert_eq!(stock(&server, &product).await["reserved"], 0);

    // An admin refund goes through Stripe and puts the units back.
    let admin = server.admin_token().await;
    let id = order["id"].as_str().unwrap();
    let refunded = server
        .post(
            &format!("/api/v1/admin/orders/{id}/refund"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(refunded.ok(200)["status"], "refunded");
    let refunds = stripe
        .call(
            reqwest::Method::GET,
            &format!("/v1/refunds?payment_intent={intent}"),
            &[],
        )
        .await;
    let refunds: Vec<&Value> = refunds["data"]
        .as_array()
        .expect("a refund list")
        .iter()
        .filter(|r| r["payment_intent"] == intent.as_str())
        .collect();
    assert_eq!(refunds.len(), 1, "one refund at Stripe: {refunds:?}");
    assert_eq!(refunds[0]["amount"], order["total"]["amount"]);
    assert_eq!(stock(&server, &product).await["on_hand"], 10);
    server.finish().await;
}

async fn one_intent_per_order_however_often_it_is_asked(backend: Backend) {
    let server = stripe_shop(backend, false, &[]).await;
    let stripe = StripeServer::new();
    let (token, _product, order) = pending_order(&server, "una@example.com", 1).await;
    // The payment service starts a session on `orders.created`; the customer's
    // page asks at the same time, several times.
    let asks = (0..4).map(|_| start_payment(&server, &token, &order));
    let payments = futures_util::future::join_all(asks).await;
    let intents: Vec<String> = payments.iter().map(intent_id).collect();
    assert!(
        intents.iter().all(|i| i == &intents[0]),
        "one intent: {intents:?}"
    );
    let all = stripe
        .call(
            reqwest::Method::GET,
            "/v1/payment_intents?limit=100000",
            &[],
        )
        .await;
    let for_this_order = all["data"]
        .as_array()
        .expect("an intent list")
        .iter()
        .filter(|i| i["metadata"]["order_id"] == order["id"])
        .count();
    assert_eq!(for_this_order, 1, "Stripe holds one intent for the order");
    server.finish().await;
}

async fn a_decline_then_a_success(backend: Backend) {
    let server = stripe_shop(backend, true, &[]).await;
    let stripe = StripeServer::new();
    let (token, product, order) = pending_order(&server, "dee@example.com", 2).await;
    let payment = start_payment(&server, &token, &order).await;
    let intent = intent_id(&payment);

    // localstripe's declining card for PaymentIntents.
    let declined = stripe.confirm_with_card(&intent, "4000000000000341").await;
    assert_eq!(declined["error"]["code"], "card_declined", "{declined}");
    let failed = payment_becomes(&server, &token, &order, "payment failed", |p| {
        p["status"] == "failed"
    })
    .await;
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .starts_with("card_declined"),
        "{failed}"
    );
    let still = order_status_becomes(&server, &token, &order, "pending_payment").await;
    assert_eq!(still["status"], "pending_payment");
    assert_eq!(stock(&server, &product).await["reserved"], 2);

    // Another card on the same intent.
    pay_with_a_good_card(&server, &stripe, &token, &order, &intent).await;
    assert_eq!(stock(&server, &product).await["on_hand"], 8);
    server.finish().await;
}

async fn an_expired_order_cancels_its_intent_at_stripe(backend: Backend) {
    let server = stripe_shop(
        backend,
        true,
        &[("PAZAR_ORDER_TTL", "2s"), ("PAZAR_SWEEP_INTERVAL", "100ms")],
    )
    .await;
    let stripe = StripeServer::new();
    let (token, product, order) = pending_order(&server, "exa@example.com", 1).await;
    let payment = start_payment(&server, &token, &order).await;
    let intent = intent_id(&payment);
    order_status_becomes(&server, &token, &order, "expired").await;
    payment_becomes(&server, &token, &order, "payment cancelled", |p| {
        p["status"] == "cancelled"
    })
    .await;
    assert_eq!(stripe.intent(&intent).await["status"], "canceled");
    assert_eq!(stock(&server, &product).await["reserved"], 0);
    // A cancelled intent can no longer be paid.
    let late = stripe.confirm_with_card(&intent, "4242424242424242").await;
    assert_eq!(late["error"]["code"], "payment_intent_unexpected_state");
    server.finish().await;
}

async fn a_lost_webhook_is_made_up_for_by_reconciliation(backend: Backend) {
    // No webhook is registered: Pazar hears nothing from Stripe.
    let server = stripe_shop(
        backend,
        false,
        &[
            ("PAZAR_PAYMENT_RECONCILE_AFTER", "1s"),
            ("PAZAR_SWEEP_INTERVAL", "100ms"),
        ],
    )
    .await;
    let stripe = StripeServer::new();
    let (token, product, order) = pending_order(&server, "rec@example.com", 4).await;
    let payment = start_payment(&server, &token, &order).await;
    let confirmed = stripe
        .confirm_with_card(&intent_id(&payment), "4242424242424242")
        .await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    order_status_becomes(&server, &token, &order, "paid").await;
    assert_eq!(stock(&server, &product).await["on_hand"], 6);
    server.finish().await;
}
