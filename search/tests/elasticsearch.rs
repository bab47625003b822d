//! The Elasticsearch adapter at its HTTP boundary. No Elasticsearch or
//! OpenSearch server can be installed on these machines, so each test runs a
//! local HTTP server that records what the adapter sends and answers as
//! Elasticsearch documents its responses (including partial `_bulk` failures
//! and 429s); both directions are asserted. This is not a live cluster.

use chrono::Utc;
use pazar_actors::{DomainError, ProductId};
use pazar_catalog::search::{SearchChange, SearchDoc, SearchIndex, SearchQuery, SearchSort};
use pazar_search::{ElasticIndex, ElasticSettings};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{http::StatusCode, Body, Request, Response, Server};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the adapter sent.
#[derive(Clone, Debug)]
struct Sent {
    method: String,
    path: String,
    query: String,
    body: String,
}

impl Sent {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The NDJSON lines of a `_bulk` body.
    fn lines(&self) -> Vec<Value> {
        self.body
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }

    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

/// A test's answers: `None` leaves the request to the default answers.
type Script = dyn Fn(&Sent, &[Sent]) -> Option<(u16, Value)> + Send + Sync;

/// The recording server.
struct Fake {
    url: String,
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl Fake {
    async fn start(
        script: impl Fn(&Sent, &[Sent]) -> Option<(u16, Value)> + Send + Sync + 'static,
    ) -> Self {
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let recorded = sent.clone();
        let app = poem::endpoint::make(move |request: Request| {
            let (recorded, script) = (recorded.clone(), script.clone());
            async move {
                let method = request.method().to_string();
                let path = request.uri().path().to_owned();
                let query = request.uri().query().unwrap_or_default().to_owned();
                let body = request.into_body().into_string().await.unwrap_or_default();
                let sent = Sent {
                    method,
                    path,
                    query,
                    body,
                };
                let earlier = {
                    let mut all = recorded.lock().unwrap();
                    let earlier = all.clone();
                    all.push(sent.clone());
                    earlier
                };
                let (status, answer) =
                    script(&sent, &earlier).unwrap_or_else(|| default_answer(&sent));
                Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .content_type("application/json")
                    .body(Body::from_string(answer.to_string()))
            }
        });
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        Self {
            url: format!("http://127.0.0.1:{port}"),
            sent,
        }
    }

    fn settings(&self) -> ElasticSettings {
        let mut settings = ElasticSettings::new(&self.url);
        settings.backoff = Duration::from_millis(5);
        settings.attempts = 4;
        settings
    }

    async fn open(&self) -> ElasticIndex {
        ElasticIndex::open(self.settings()).await.unwrap()
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }

    fn bulks(&self) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|sent| sent.path.ends_with("/_bulk"))
            .collect()
    }

    fn state_writes(&self) -> Vec<Value> {
        self.sent()
            .into_iter()
            .filter(|sent| sent.is("POST", "/pazar-products_state/_doc/state"))
            .map(|sent| sent.json())
            .collect()
    }
}

/// What a small Elasticsearch answers when the test does not say otherwise:
/// no alias yet, no state, every write accepted.
fn default_answer(sent: &Sent) -> (u16, Value) {
    let path = sent.path.as_str();
    match sent.method.as_str() {
        "GET" if path.starts_with("/_alias/") => (
            404,
            json!({"error": "alias [pazar-products] missing", "status": 404}),
        ),
        "GET" if path.ends_with("/_doc/state") => (
            404,
            json!({"_index": "pazar-products_state", "_id": "state", "found": false}),
        ),
        "PUT" if path.matches('/').count() == 1 => (
            200,
            json!({"acknowledged": true, "shards_acknowledged": true, "index": &path[1..]}),
        ),
        "POST" if path.ends_with("/_bulk") => (200, accept_all(sent)),
        "POST" if path.ends_with("/_doc/state") => (201, json!({"result": "created"})),
        _ if path.ends_with("/_count") => (200, json!({"count": 3})),
        _ if path.ends_with("/_pit") => (200, json!({"id": "pit-1"})),
        _ => (200, json!({"acknowledged": true})),
    }
}

/// A `_bulk` response accepting every operation of `sent`.
fn accept_all(sent: &Sent) -> Value {
    let items: Vec<Value> = actions(sent)
        .into_iter()
        .map(|(action, id)| json!({ action: {"_id": id, "status": 200, "result": "updated"} }))
        .collect();
    json!({"took": 1, "errors": false, "items": items})
}

/// The (action, id) of each operation in a `_bulk` body.
fn actions(sent: &Sent) -> Vec<(String, String)> {
    sent.lines()
        .into_iter()
        .filter_map(|line| {
            let (action, meta) = line.as_object()?.iter().next()?;
            ["index", "update", "delete"]
                .contains(&action.as_str())
                .then(|| {
                    (
                        action.clone(),
                        meta["_id"].as_str().unwrap_or_default().to_owned(),
                    )
                })
        })
        .collect()
}

fn doc(name: &str, price: i64, available: i64) -> SearchDoc {
    SearchDoc {
        product_id: ProductId(uuid::Uuid::new_v4()),
        name: name.into(),
        description: format!("A fine {name}"),
        sku: format!("SKU-{}", &uuid::Uuid::new_v4().to_string()[..8]).to_uppercase(),
        price,
        currency: "EUR".into(),
        available,
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn a_first_start_creates_the_index_with_its_mapping_behind_the_alias() {
    let fake = Fake::start(|_, _| None).await;
    let index = fake.open().await;
    let sent = fake.sent();
    assert!(sent[0].is("GET", "/_alias/pazar-products"), "{sent:?}");
    // The product index, named after the alias, with the mapping and the alias.
    assert_eq!(sent[1].method, "PUT");
    assert!(
        sent[1].path.starts_with("/pazar-products-"),
        "{:?}",
        sent[1]
    );
    let definition = sent[1].json();
    assert_eq!(definition["aliases"], json!({"pazar-products": {}}));
    let mapping = &definition["mappings"];
    assert_eq!(mapping["dynamic"], "strict");
    assert_eq!(mapping["properties"]["name"]["type"], "text");
    assert_eq!(mapping["properties"]["sku"]["type"], "keyword");
    assert_eq!(mapping["properties"]["sku"]["normalizer"], "lowercase");
    assert_eq!(mapping["properties"]["in_stock"]["type"], "boolean");
    assert_eq!(mapping["properties"]["price"]["type"], "long");
    assert_eq!(definition["settings"]["index"]["refresh_interval"], "1s");
    assert_eq!(
        definition["settings"]["analysis"]["normalizer"]["lowercase"]["filter"],
        json!(["lowercase"])
    );
    // The state index, then its document (none yet).
    assert!(sent[2].is("PUT", "/pazar-products_state"), "{:?}", sent[2]);
    assert!(sent[3].is("GET", "/pazar-products_state/_doc/state"));
    let status = index.status().await.unwrap();
    assert_eq!(status.backend, "elasticsearch");
    assert_eq!(status.documents, 3, "read from _count");
    assert_eq!(status.position, 0);
    assert!(!status.interrupted);
}

#[tokio::test]
async fn a_restart_reads_the_alias_and_the_state_it_left() {
    let fake = Fake::start(|sent, _| {
        if sent.is("GET", "/_alias/pazar-products") {
            return Some((200, json!({"pazar-products-17": {"aliases": {"pazar-products": {}}}})));
        }
        if sent.is("PUT", "/pazar-products_state") {
            return Some((
                400,
                json!({"error": {"type": "resource_already_exists_exception", "reason": "index [pazar-products_state] already exists"}, "status": 400}),
            ));
        }
        if sent.is("GET", "/pazar-products_state/_doc/state") {
            return Some((
                200,
                json!({"_index": "pazar-products_state", "_id": "state", "found": true,
                       "_source": {"position": 42, "last_reindex": "2026-12-01T10:00:00Z", "unsettled": true}}),
            ));
        }
        None
    })
    .await;
    let index = fake.open().await;
    // No product index is created when the alias exists.
    assert!(!fake
        .sent()
        .iter()
        .any(|sent| sent.method == "PUT" && sent.path.starts_with("/pazar-products-")));
    let status = index.status().await.unwrap();
    assert_eq!(status.position, 42);
    assert!(
        status.interrupted,
        "the marker was left: the catalog rebuilds"
    );
    assert_eq!(
        status.last_reindex.map(|at| at.to_rfc3339()),
        Some("2026-12-01T10:00:00+00:00".to_owned())
    );
}

#[tokio::test]
async fn changes_go_out_as_bulk_ndjson_through_the_alias_then_the_position() {
    let fake = Fake::start(|_, _| None).await;
    let index = fake.open().await;
    fake.clear();
    let (new, restocked, gone) = (
        doc("Teapot", 2_500, 3),
        doc("Cup", 800, 5),
        doc("Mug", 900, 1),
    );
    index.unsettled().await.unwrap();
    index.unsettled().await.unwrap();
    assert_eq!(
        fake.state_writes(),
        vec![json!({"position": 0, "last_reindex": null, "unsettled": true})],
        "the marker is written once, before anything is acknowledged"
    );
    index
        .apply(
            &[
                SearchChange::Upsert(new.clone()),
                SearchChange::Stock {
                    product_id: restocked.product_id,
                    available: 0,
                },
                SearchChange::Delete(gone.product_id),
            ],
            7,
            true,
        )
        .await
        .unwrap();
    let bulks = fake.bulks();
    assert_eq!(bulks.len(), 1);
    assert!(
        bulks[0].is("POST", "/pazar-products/_bulk"),
        "writes go through the alias"
    );
    let lines = bulks[0].lines();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(
        lines[0],
        json!({"index": {"_id": new.product_id.0.to_string()}})
    );
    assert_eq!(
        lines[1],
        json!({"id": new.product_id.0.to_string(), "name": "Teapot", "description": "A fine Teapot",
               "sku": new.sku, "price": 2_500, "currency": "EUR", "available": 3, "in_stock": true,
               "created": new.created_at.timestamp_micros()})
    );
    // A stock change sends only the stock, as a partial update.
    assert_eq!(
        lines[2],
        json!({"update": {"_id": restocked.product_id.0.to_string()}})
    );
    assert_eq!(
        lines[3],
        json!({"doc": {"available": 0, "in_stock": false}})
    );
    assert_eq!(
        lines[4],
        json!({"delete": {"_id": gone.product_id.0.to_string()}})
    );
    // The position after the changes succeeded, and the marker cleared.
    let sent = fake.sent();
    let bulk_at = sent
        .iter()
        .position(|s| s.path.ends_with("/_bulk"))
        .unwrap();
    let state_at = sent
        .iter()
        .rposition(|s| s.path.ends_with("/_doc/state"))
        .unwrap();
    assert!(state_at > bulk_at);
    assert_eq!(
        fake.state_writes().last().unwrap(),
        &json!({"position": 7, "last_reindex": null, "unsettled": false})
    );
    assert_eq!(index.status().await.unwrap().position, 7);
}

#[tokio::test]
async fn operations_refused_with_429_are_sent_again_until_accepted() {
    let fake = Fake::start(|sent, earlier| {
        if !sent.path.ends_with("/_bulk") {
            return None;
        }
        let bulks_before = earlier.iter().filter(|s| s.path.ends_with("/_bulk")).count();
        Some(match bulks_before {
            // A partial failure: the second operation is rejected (queue full),
            // the third is a deletion of a document that is not there.
            0 => {
                let ids: Vec<String> = actions(sent).into_iter().map(|(_, id)| id).collect();
                (
                    200,
                    json!({"took": 3, "errors": true, "items": [
                        {"index": {"_index": "pazar-products-1", "_id": ids[0], "status": 201, "result": "created"}},
                        {"index": {"_index": "pazar-products-1", "_id": ids[1], "status": 429,
                                   "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"}}},
                        {"delete": {"_index": "pazar-products-1", "_id": ids[2], "status": 404, "result": "not_found"}},
                    ]}),
                )
            }
            // The whole request refused.
            1 => (
                429,
                json!({"error": {"type": "es_rejected_execution_exception", "reason": "rejected"}, "status": 429}),
            ),
            _ => (200, accept_all(sent)),
        })
    })
    .await;
    let index = fake.open().await;
    let (first, second, missing) = (
        doc("Teapot", 2_500, 3),
        doc("Cup", 800, 5),
        doc("Mug", 1, 1),
    );
    index
        .apply(
            &[
                SearchChange::Upsert(first.clone()),
                SearchChange::Upsert(second.clone()),
                SearchChange::Delete(missing.product_id),
            ],
            9,
            true,
        )
        .await
        .unwrap();
    let bulks = fake.bulks();
    assert_eq!(bulks.len(), 3, "{bulks:?}");
    assert_eq!(actions(&bulks[0]).len(), 3);
    // Only the rejected operation is sent again, with its document.
    for again in &bulks[1..] {
        assert_eq!(
            actions(again),
            vec![("index".to_owned(), second.product_id.0.to_string())]
        );
        assert_eq!(again.lines()[1]["name"], "Cup");
    }
    assert_eq!(fake.state_writes().last().unwrap()["position"], 9);
}

#[tokio::test]
async fn a_document_refused_for_good_or_too_often_fails_the_apply_and_keeps_the_position() {
    let refused = doc("Broken", 100, 1);
    let refused_id = refused.product_id.0.to_string();
    let fake = Fake::start(move |sent, _| {
        if !sent.path.ends_with("/_bulk") {
            return None;
        }
        let items: Vec<Value> = actions(sent)
            .into_iter()
            .map(|(action, id)| {
                if id == refused_id {
                    json!({ action: {"_id": id, "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [price]"}}})
                } else {
                    json!({ action: {"_id": id, "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected"}}})
                }
            })
            .collect();
        Some((200, json!({"took": 1, "errors": true, "items": items})))
    })
    .await;
    let index = fake.open().await;
    let error = index
        .apply(&[SearchChange::Upsert(refused.clone())], 3, true)
        .await
        .unwrap_err();
    let DomainError::Unavailable(message) = error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains(&refused.product_id.0.to_string()),
        "{message}"
    );
    assert!(message.contains("mapper_parsing_exception"), "{message}");
    // Refused every time: tried `attempts` times, then the apply fails (the
    // indexer keeps the change pending; it is never dropped).
    fake.clear();
    let busy = doc("Busy", 100, 1);
    let error = index
        .apply(&[SearchChange::Upsert(busy.clone())], 4, true)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("after 4 tries"), "{error}");
    assert_eq!(fake.bulks().len(), 4);
    assert!(fake.state_writes().is_empty(), "the position did not move");
    assert_eq!(index.status().await.unwrap().position, 0);
}

/// A search response in Elasticsearch's format: `ids` as hits with sort values.
fn hits(ids: &[ProductId], total: u64, pit: Option<&str>) -> Value {
    let hits: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"_index": "pazar-products-1", "_id": id.0.to_string(), "_score": 2.5 - i as f64,
                   "highlight": {"description": ["A fine <b>teapot</b> &amp; cup"]},
                   "sort": [2.5 - i as f64, 1_700_000_000 + i, id.0.to_string()]})
        })
        .collect();
    let mut answer = json!({
        "took": 2, "timed_out": false,
        "hits": {"total": {"value": total, "relation": "eq"}, "max_score": 2.5, "hits": hits},
        "aggregations": {
            "price_bands": {"doc_count": total, "bands": {"buckets": [
                {"key": "0.0-1000.0", "from": 0.0, "to": 1000.0, "doc_count": 1},
                {"key": "1000.0-5000.0", "from": 1000.0, "to": 5000.0, "doc_count": 2},
                {"key": "5000.0-10000.0", "from": 5000.0, "to": 10000.0, "doc_count": 0},
                {"key": "10000.0-50000.0", "from": 10000.0, "to": 50000.0, "doc_count": 1},
                {"key": "50000.0-*", "from": 50000.0, "doc_count": 1},
            ]}},
            "stock": {"doc_count": total, "states": {"buckets": {
                "in_stock": {"doc_count": 4}, "sold_out": {"doc_count": 1},
            }}},
        },
    });
    if let Some(pit) = pit {
        answer["pit_id"] = json!(pit);
    }
    answer
}

#[tokio::test]
async fn a_search_is_sent_as_query_dsl_and_read_back_with_facets_highlights_and_cursors() {
    let ids: Vec<ProductId> = (0..5).map(|_| ProductId(uuid::Uuid::new_v4())).collect();
    let pages = ids.clone();
    let fake = Fake::start(move |sent, _| {
        if sent.path.ends_with("/_pit") {
            return Some((200, json!({"id": "pit-1"})));
        }
        if !sent.path.ends_with("/_search") {
            return None;
        }
        let body = sent.json();
        Some(match body["pit"]["id"].as_str() {
            None if body["from"] == 0 => (200, hits(&pages[..2], 5, None)),
            Some("pit-1") => (200, hits(&pages[2..4], 5, Some("pit-2"))),
            Some("zz") => (
                400,
                json!({"error": {"type": "illegal_argument_exception", "reason": "invalid id"}, "status": 400}),
            ),
            // The point in time has expired.
            Some(_) => (
                404,
                json!({"error": {"type": "search_context_missing_exception", "reason": "No search context found for id [2]"}, "status": 404}),
            ),
            None => (200, hits(&pages[4..], 5, None)),
        })
    })
    .await;
    let index = fake.open().await;
    fake.clear();
    let query = SearchQuery {
        text: Some("porcelan teapot te".into()),
        min_price: Some(1_000),
        max_price: None,
        currency: Some("EUR".into()),
        in_stock: Some(true),
        sort: SearchSort::Relevance,
        limit: 2,
        offset: 0,
        cursor: None,
    };
    let first = index.search(&query).await.unwrap();
    let sent = fake.sent();
    assert!(
        sent[0].is("POST", "/pazar-products/_search"),
        "{:?}",
        sent[0]
    );
    let body = sent[0].json();
    assert_eq!(body["size"], 2);
    assert_eq!(body["from"], 0);
    assert_eq!(body["track_total_hits"], true);
    // Every word must match, with typos; the last also as a prefix; or the SKU.
    let text = &body["query"]["bool"]["must"][0]["bool"];
    assert_eq!(text["minimum_should_match"], 1);
    assert_eq!(
        text["should"][0],
        json!({"term": {"sku": {"value": "porcelan teapot te", "boost": 10.0}}})
    );
    assert_eq!(
        text["should"][1]["prefix"]["sku"]["value"],
        "porcelan teapot te"
    );
    let words = text["should"][2]["bool"]["must"].as_array().unwrap();
    assert_eq!(words.len(), 3);
    let fuzzy = &words[0]["bool"]["should"][0]["multi_match"];
    assert_eq!(fuzzy["query"], "porcelan");
    assert_eq!(fuzzy["fuzziness"], "AUTO:4,8");
    assert_eq!(fuzzy["fields"], json!(["name^3", "description"]));
    assert_eq!(words[0]["bool"]["should"].as_array().unwrap().len(), 1);
    assert_eq!(
        words[2]["bool"]["should"][1]["multi_match"]["type"],
        "phrase_prefix"
    );
    assert_eq!(words[2]["bool"]["should"][1]["multi_match"]["query"], "te");
    // Currency narrows everything; price and stock narrow the hits and the
    // other facet, not their own.
    assert_eq!(
        body["query"]["bool"]["filter"],
        json!([{"term": {"currency": "EUR"}}])
    );
    assert_eq!(
        body["post_filter"],
        json!({"bool": {"filter": [{"range": {"price": {"gte": 1000}}}, {"term": {"in_stock": true}}]}})
    );
    assert_eq!(
        body["aggs"]["price_bands"]["filter"],
        json!({"bool": {"filter": [{"term": {"in_stock": true}}]}})
    );
    assert_eq!(
        body["aggs"]["price_bands"]["aggs"]["bands"]["range"]["ranges"][4],
        json!({"from": 50_000})
    );
    assert_eq!(
        body["aggs"]["stock"]["filter"],
        json!({"bool": {"filter": [{"range": {"price": {"gte": 1000}}}]}})
    );
    assert_eq!(
        body["sort"],
        json!([{"_score": "desc"}, {"created": "desc"}, {"id": "asc"}])
    );
    assert_eq!(body["highlight"]["encoder"], "html");
    // Read back: hits in order, highlights, total, facets.
    assert_eq!(
        first
            .hits
            .iter()
            .map(|hit| hit.product_id)
            .collect::<Vec<_>>(),
        ids[..2]
    );
    assert_eq!(
        first.hits[0].highlight.as_deref(),
        Some("A fine <b>teapot</b> &amp; cup")
    );
    assert_eq!(first.total, 5);
    assert_eq!(
        first
            .facets
            .price_bands
            .iter()
            .map(|band| band.count)
            .collect::<Vec<_>>(),
        vec![1, 2, 0, 1, 1]
    );
    assert_eq!((first.facets.in_stock, first.facets.sold_out), (4, 1));
    // More to come: a point in time was opened for the next pages.
    assert!(sent[1].is("POST", "/pazar-products/_pit"), "{:?}", sent[1]);
    assert!(sent[1].query.contains("keep_alive=5m"), "{}", sent[1].query);
    let cursor = first.next_cursor.clone().expect("a cursor");

    fake.clear();
    let second = index
        .search(&SearchQuery {
            cursor: Some(cursor),
            ..query.clone()
        })
        .await
        .unwrap();
    let sent = fake.sent();
    assert!(
        sent[0].is("POST", "/_search"),
        "a point in time names no index"
    );
    let body = sent[0].json();
    assert_eq!(body["pit"], json!({"id": "pit-1", "keep_alive": "5m"}));
    assert_eq!(body["from"], 2, "the next results of the same view");
    assert_eq!(
        body["query"]["bool"]["filter"],
        json!([{"term": {"currency": "EUR"}}]),
        "the view holds only what existed at the first page"
    );
    assert_eq!(
        second
            .hits
            .iter()
            .map(|hit| hit.product_id)
            .collect::<Vec<_>>(),
        ids[2..4]
    );
    let cursor = second.next_cursor.clone().expect("a third page");

    // The point in time given back ("pit-2") has expired: the alias answers,
    // without products created after the first page.
    fake.clear();
    let third = index
        .search(&SearchQuery {
            cursor: Some(cursor),
            ..query.clone()
        })
        .await
        .unwrap();
    let sent = fake.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].json()["pit"]["id"], "pit-2");
    assert!(sent[1].is("POST", "/pazar-products/_search"));
    assert_eq!(sent[1].json()["from"], 4);
    let created_before = &sent[1].json()["query"]["bool"]["filter"][1]["range"]["created"]["lt"];
    assert!(
        created_before.as_i64().unwrap() <= chrono::Utc::now().timestamp_micros(),
        "{created_before}"
    );
    assert_eq!(third.hits.len(), 1);
    assert_eq!(third.next_cursor, None, "5 of 5 read");

    // A cursor of the right shape whose view Elasticsearch does not know (400)
    // is read like an expired one; anything else is refused, naming the cursor.
    fake.clear();
    let unknown = index
        .search(&SearchQuery {
            cursor: Some("c1.4.1700000000000000.zz".into()),
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(unknown.hits.len(), 1);
    assert_eq!(fake.sent().len(), 2);
    for bad in ["e1.00", "t1.1.2.3", "c1.x.1.zz"] {
        let error = index
            .search(&SearchQuery {
                cursor: Some(bad.into()),
                ..query.clone()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(error, DomainError::Invalid { ref field, .. } if field == "cursor"),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn listing_without_text_sorts_by_the_field_and_suggest_reads_names() {
    let fake = Fake::start(|sent, _| {
        if !sent.path.ends_with("/_search") {
            return None;
        }
        let name = |name: &str| json!({"_id": uuid::Uuid::new_v4().to_string(), "_source": {"name": name}});
        Some((
            200,
            json!({"hits": {"total": {"value": 3, "relation": "eq"}, "hits": [name("Teapot"), name("Teapot"), name("Tea Cup")]}}),
        ))
    })
    .await;
    let index = fake.open().await;
    fake.clear();
    index
        .search(&SearchQuery {
            sort: SearchSort::PriceDesc,
            limit: 10,
            ..SearchQuery::default()
        })
        .await
        .unwrap();
    let body = fake.sent()[0].json();
    assert_eq!(body["sort"], json!([{"price": "desc"}, {"id": "asc"}]));
    assert!(body["query"]["bool"].get("must").is_none());
    assert!(body.get("highlight").is_none());
    assert!(body.get("post_filter").is_none());
    fake.clear();
    let names = index.suggest("tea", 8).await.unwrap();
    assert_eq!(names, vec!["Teapot", "Tea Cup"], "distinct names in order");
    let body = fake.sent()[0].json();
    assert_eq!(body["size"], 16);
    assert_eq!(body["_source"], json!(["name"]));
}

#[tokio::test]
async fn a_rebuild_fills_a_new_index_replays_what_changed_meanwhile_and_swaps_the_alias() {
    let fake = Fake::start(|sent, _| {
        sent.is("GET", "/_alias/pazar-products").then(|| {
            (
                200,
                json!({"pazar-products-1000": {"aliases": {"pazar-products": {}}}}),
            )
        })
    })
    .await;
    let index = fake.open().await;
    fake.clear();
    let docs: Vec<SearchDoc> = (0..2_500)
        .map(|i| doc(&format!("Product {i}"), i, 1))
        .collect();
    // A change applied after the rebuild began reading the store.
    index.begin_rebuild().await;
    let late = doc("Late arrival", 100, 2);
    index
        .apply(&[SearchChange::Upsert(late.clone())], 30, true)
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress = seen.clone();
    index
        .rebuild(
            docs,
            25,
            Arc::new(move |done| progress.lock().unwrap().push(done)),
        )
        .await
        .unwrap();
    let sent = fake.sent();
    let create = sent
        .iter()
        .find(|s| s.method == "PUT" && s.path.starts_with("/pazar-products-"))
        .expect("a new index");
    let fresh = create.path[1..].to_owned();
    assert_ne!(fresh, "pazar-products-1000");
    let definition = create.json();
    assert!(
        definition.get("aliases").is_none(),
        "not searched until swapped"
    );
    assert_eq!(definition["settings"]["index"]["refresh_interval"], "-1");
    let into_fresh: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.path == format!("/{fresh}/_bulk"))
        .collect();
    assert_eq!(
        into_fresh
            .iter()
            .map(|s| actions(s).len())
            .collect::<Vec<_>>(),
        vec![1_000, 1_000, 500, 1],
        "chunks of 1,000, then the change applied meanwhile"
    );
    assert_eq!(actions(into_fresh[3])[0].1, late.product_id.0.to_string());
    assert_eq!(*seen.lock().unwrap(), vec![1_000, 2_000, 2_500, 2_500]);
    let order = |wanted: &dyn Fn(&Sent) -> bool| sent.iter().position(wanted).unwrap();
    let settings = order(&|s| s.is("PUT", &format!("/{fresh}/_settings")));
    assert_eq!(
        sent[settings].json(),
        json!({"index": {"refresh_interval": "1s"}})
    );
    let refresh = order(&|s| s.path == format!("/{fresh}/_refresh"));
    let swap = order(&|s| s.is("POST", "/_aliases"));
    assert_eq!(
        sent[swap].json(),
        json!({"actions": [
            {"remove": {"index": "pazar-products-1000", "alias": "pazar-products"}},
            {"add": {"index": fresh, "alias": "pazar-products"}},
        ]})
    );
    let dropped = order(&|s| s.is("DELETE", "/pazar-products-1000"));
    assert!(settings < refresh && refresh < swap && swap < dropped);
    let state = fake.state_writes().last().unwrap().clone();
    assert_eq!(state["position"], 30);
    assert!(state["last_reindex"].is_string());
    // Writes after the swap still go through the alias.
    fake.clear();
    index
        .apply(&[SearchChange::Delete(late.product_id)], 31, true)
        .await
        .unwrap();
    assert!(fake.bulks()[0].is("POST", "/pazar-products/_bulk"));
}

#[tokio::test]
async fn a_failed_rebuild_leaves_the_alias_and_removes_its_half_built_index() {
    let fake = Fake::start(|sent, _| {
        if sent.is("GET", "/_alias/pazar-products") {
            return Some((200, json!({"pazar-products-1000": {"aliases": {"pazar-products": {}}}})));
        }
        (sent.path.ends_with("/_bulk") && sent.path != "/pazar-products/_bulk").then(|| {
            (
                400,
                json!({"error": {"type": "illegal_argument_exception", "reason": "no"}, "status": 400}),
            )
        })
    })
    .await;
    let index = fake.open().await;
    fake.clear();
    let error = index
        .rebuild(vec![doc("One", 1, 1)], 5, Arc::new(|_| {}))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("illegal_argument_exception"),
        "{error}"
    );
    let sent = fake.sent();
    let fresh = sent
        .iter()
        .find(|s| s.method == "PUT" && s.path.starts_with("/pazar-products-"))
        .unwrap()
        .path
        .clone();
    assert!(
        !sent.iter().any(|s| s.path == "/_aliases"),
        "the alias stays"
    );
    assert!(sent.iter().any(|s| s.is("DELETE", &fresh)));
    // Writes keep going to the alias, the old index.
    fake.clear();
    index
        .apply(&[SearchChange::Upsert(doc("Two", 1, 1))], 6, true)
        .await
        .unwrap();
    assert!(fake.bulks()[0].is("POST", "/pazar-products/_bulk"));
}
