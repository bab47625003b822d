//! The Elasticsearch adapter (`ELASTICSEARCH_URL`), through the official
//! `elasticsearch` crate.
//!
//! - **Layout.** Searches and writes go through the alias `<name>` (default
//!   `pazar-products`), which points at one concrete index `<name>-<millis>`.
//!   A rebuild fills a new concrete index (refresh off), replays the changes
//!   applied to the old one meanwhile, refreshes it, then moves the alias in one
//!   `_aliases` request (atomic: a search sees the old index or the new one,
//!   whole) and deletes the old index.
//! - **Mapping**, explicit and strict, created with each index: `name`
//!   (boosted ×3) and `description` as `text`; `sku` a `keyword` with a
//!   lower-case normalizer (exact and prefix); `price`, `available`, `created`
//!   (microseconds) as `long`; `currency` a `keyword`; `in_stock` a `boolean`.
//! - **State.** The document `<name>_state/_doc/state` holds the position of
//!   the last event applied, the time of the last rebuild and the unsettled
//!   marker (see the port): written after the changes it covers succeeded, so
//!   it never claims more than the index holds.
//! - **Writes** are `_bulk` requests (NDJSON, at most [`BULK_CHUNK`]
//!   operations). Operations refused with 429 (or a 5xx) are sent again,
//!   alone, after a backoff that doubles; a whole request refused with 429 or
//!   a 5xx likewise. A change is never dropped: what still fails after the
//!   attempts fails the apply, and the indexer keeps it pending. A stock-only
//!   change is a partial `update` of `available` and `in_stock`; deleting a
//!   document that is not there, or updating the stock of one not indexed yet
//!   (its upsert carries the stock), is not an error.
//! - **Queries** (the query DSL): every word must match `name^3` or
//!   `description` (a `multi_match` with fuzziness `AUTO:4,8`: one edit from 4
//!   letters, two from 8), the last word also as a prefix; or the whole text is
//!   a SKU, exactly or as a prefix. Currency is a `term` filter; the price range
//!   and stock filters are `post_filter`s, so each facet (a `range`
//!   aggregation of price bands, a `filters` aggregation of in stock / sold
//!   out) counts with the other filters but not its own. Highlights in
//!   `<b>`, HTML-encoded, as tantivy gives them.
//! - **Paging.** A first page with more to come opens a point in time (5
//!   minutes); its cursor ([`SearchCursor`]) carries it, the offset and the
//!   creation time of the first page. Pages are read from that point in time
//!   (`from`; the index allows 100,100 deep, as far as a cursor goes), so
//!   products added meanwhile never shift them; once it has expired (or is not
//!   one Elasticsearch knows), the alias answers, restricted to products
//!   created before the first page. Sorts end with the product id, so equal
//!   keys keep one order.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use elasticsearch::auth::Credentials;
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{StatusCode, Url};
use elasticsearch::indices::{
    IndicesCreateParts, IndicesDeleteParts, IndicesGetAliasParts, IndicesPutSettingsParts,
    IndicesRefreshParts,
};
use elasticsearch::{
    BulkParts, CountParts, Elasticsearch, GetParts, IndexParts, OpenPointInTimeParts, SearchParts,
};
use pazar_actors::{DomainError, ProductId};
use pazar_catalog::search::{
    words, Facets, IndexStatus, PriceBand, SearchChange, SearchCursor, SearchDoc, SearchHit,
    SearchIndex, SearchQuery, SearchResults, SearchSort, PRICE_BANDS,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Operations per `_bulk` request.
pub const BULK_CHUNK: usize = 1_000;
/// How long a point in time is kept for the next page.
const KEEP_ALIVE: &str = "5m";

/// Where Elasticsearch is and how to use it.
#[derive(Clone)]
pub struct ElasticSettings {
    /// Its URL (`ELASTICSEARCH_URL`), e.g. `https://search.internal:9200`.
    pub url: String,
    /// Basic credentials (`ELASTICSEARCH_USERNAME`, `ELASTICSEARCH_PASSWORD`).
    pub credentials: Option<(String, String)>,
    /// The alias searched and written (`ELASTICSEARCH_INDEX`); concrete
    /// indices are named after it.
    pub alias: String,
    /// Per request.
    pub timeout: Duration,
    /// Tries of a refused (429, 5xx) bulk operation before the apply fails.
    pub attempts: u32,
    /// The first wait before trying again; it doubles, up to 5 s.
    pub backoff: Duration,
}

impl ElasticSettings {
    /// The defaults for `url`: alias `pazar-products`, 10 s per request, 8
    /// tries from 100 ms apart.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            credentials: None,
            alias: "pazar-products".to_owned(),
            timeout: Duration::from_secs(10),
            attempts: 8,
            backoff: Duration::from_millis(100),
        }
    }
}

// The password never reaches a log.
impl std::fmt::Debug for ElasticSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticSettings")
            .field("url", &self.url)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("alias", &self.alias)
            .finish_non_exhaustive()
    }
}

/// What the state document holds.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct State {
    position: i64,
    last_reindex: Option<DateTime<Utc>>,
    unsettled: bool,
}

/// The Elasticsearch index of the catalog (a cheap handle).
#[derive(Clone)]
pub struct ElasticIndex(Arc<Inner>);

struct Inner {
    client: Elasticsearch,
    settings: ElasticSettings,
    state_index: String,
    /// The state as last written; held while it is written.
    state: tokio::sync::Mutex<State>,
    /// The marker was set when this process opened the index.
    interrupted: bool,
    /// The concrete index behind the alias.
    current: std::sync::Mutex<String>,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
    /// Held by each apply and by a rebuild's swap; while a rebuild runs, the
    /// changes applied to the old index are kept here and applied to the new
    /// one before the alias moves, so none is lost.
    applying: tokio::sync::Mutex<Option<(Vec<SearchChange>, i64)>>,
}

/// One bulk operation.
#[derive(Clone, Debug)]
enum Operation {
    Index(ProductId, Value),
    Update(ProductId, Value),
    Delete(ProductId),
}

impl Operation {
    fn product(&self) -> ProductId {
        match self {
            Self::Index(product, _) | Self::Update(product, _) | Self::Delete(product) => *product,
        }
    }

    fn lines(&self, lines: &mut Vec<JsonBody<Value>>) {
        match self {
            Self::Index(product, doc) => {
                lines.push(json!({"index": {"_id": product.0.to_string()}}).into());
                lines.push(doc.clone().into());
            }
            Self::Update(product, fields) => {
                lines.push(json!({"update": {"_id": product.0.to_string()}}).into());
                lines.push(json!({ "doc": fields }).into());
            }
            Self::Delete(product) => {
                lines.push(json!({"delete": {"_id": product.0.to_string()}}).into());
            }
        }
    }
}

impl ElasticIndex {
    /// Connects, creates the index (mapping and alias) and the state index
    /// where they are missing, and reads the state.
    pub async fn open(settings: ElasticSettings) -> Result<Self, DomainError> {
        let url = Url::parse(&settings.url)
            .map_err(|e| DomainError::Unavailable(format!("ELASTICSEARCH_URL: {e}")))?;
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(settings.timeout)
            .disable_proxy();
        if let Some((user, password)) = &settings.credentials {
            builder = builder.auth(Credentials::Basic(user.clone(), password.clone()));
        }
        let client = Elasticsearch::new(builder.build().map_err(engine)?);
        let alias = settings.alias.clone();
        let response = client
            .indices()
            .get_alias(IndicesGetAliasParts::Name(&[&alias]))
            .send()
            .await
            .map_err(transport)?;
        let current = if response.status_code() == StatusCode::NOT_FOUND {
            let name = concrete_name(&alias, None);
            create_index(&client, &name, Some(&alias), false).await?;
            tracing::info!(index = %name, %alias, "created the search index");
            name
        } else {
            let body = checked(response).await?;
            body.as_object()
                .and_then(|indices| indices.keys().next().cloned())
                .ok_or_else(|| engine(format!("alias {alias} points at no index")))?
        };
        let state_index = format!("{alias}_state");
        let created = client
            .indices()
            .create(IndicesCreateParts::Index(&state_index))
            .body(json!({"mappings": {"dynamic": false, "properties": {}}}))
            .send()
            .await
            .map_err(transport)?;
        if created.status_code() != StatusCode::BAD_REQUEST {
            checked(created).await?;
        }
        let response = client
            .get(GetParts::IndexId(&state_index, "state"))
            .send()
            .await
            .map_err(transport)?;
        let state: State = if response.status_code() == StatusCode::NOT_FOUND {
            State::default()
        } else {
            let mut found = checked(response).await?;
            let source = found.get_mut("_source").map(Value::take);
            serde_json::from_value(source.unwrap_or_else(|| json!({}))).map_err(engine)?
        };
        Ok(Self(Arc::new(Inner {
            client,
            settings,
            state_index,
            interrupted: state.unsettled,
            state: tokio::sync::Mutex::new(state),
            current: std::sync::Mutex::new(current),
            rebuilding: tokio::sync::Mutex::new(()),
            applying: tokio::sync::Mutex::new(None),
        })))
    }
}

impl Inner {
    fn alias(&self) -> &str {
        &self.settings.alias
    }

    fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes the state changed by `change` (held against other writers).
    async fn write_state(&self, change: impl FnOnce(&mut State)) -> Result<(), DomainError> {
        let mut state = self.state.lock().await;
        let mut next = state.clone();
        change(&mut next);
        let response = self
            .client
            .index(IndexParts::IndexId(&self.state_index, "state"))
            .body(serde_json::to_value(&next).map_err(engine)?)
            .send()
            .await
            .map_err(transport)?;
        checked(response).await?;
        *state = next;
        Ok(())
    }

    /// Sends `operations` to `target` in chunks, trying the refused ones again.
    async fn bulk(&self, target: &str, operations: Vec<Operation>) -> Result<(), DomainError> {
        for chunk in operations.chunks(BULK_CHUNK) {
            self.bulk_chunk(target, chunk.to_vec()).await?;
        }
        Ok(())
    }

    async fn bulk_chunk(
        &self,
        target: &str,
        mut operations: Vec<Operation>,
    ) -> Result<(), DomainError> {
        let mut backoff = self.settings.backoff;
        let mut attempt = 1;
        loop {
            let mut lines = Vec::with_capacity(operations.len() * 2);
            for operation in &operations {
                operation.lines(&mut lines);
            }
            let response = self
                .client
                .bulk(BulkParts::Index(target))
                .body(lines)
                .send()
                .await
                .map_err(transport)?;
            let refused = if retryable(response.status_code()) {
                tracing::warn!(status = %response.status_code(), attempt, "elasticsearch refused a bulk request; trying again");
                operations
            } else {
                let body = checked(response).await?;
                refused_items(&body, operations)?
            };
            if refused.is_empty() {
                return Ok(());
            }
            if attempt >= self.settings.attempts {
                return Err(engine(format!(
                    "{} bulk operations still refused after {attempt} tries (product {} first)",
                    refused.len(),
                    refused[0].product().0
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            attempt += 1;
            operations = refused;
        }
    }

    async fn search_in(&self, query: &SearchQuery) -> Result<SearchResults, DomainError> {
        let cursor = query
            .cursor
            .as_deref()
            .map(SearchCursor::parse)
            .transpose()?;
        let offset = cursor.as_ref().map_or(query.offset, |cursor| cursor.offset);
        let mut body = search_body(query, None);
        body["from"] = json!(offset);
        let mut pit = cursor.as_ref().and_then(|cursor| pit_of(&cursor.view));
        let mut answer = None;
        if let Some(id) = &pit {
            let mut in_view = body.clone();
            in_view["pit"] = json!({"id": id, "keep_alive": KEEP_ALIVE});
            let response = self
                .client
                .search(SearchParts::None)
                .body(in_view)
                .send()
                .await
                .map_err(transport)?;
            // Expired (404) or not one Elasticsearch knows (400): read the alias.
            if !matches!(
                response.status_code(),
                StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
            ) {
                answer = Some(checked(response).await?);
            } else {
                pit = None;
            }
        }
        let answer = match answer {
            Some(answer) => answer,
            None => {
                // Without the view, what was created after the first page stays out.
                let mut body = search_body(query, cursor.as_ref().map(|c| c.created_before));
                body["from"] = json!(offset);
                let response = self
                    .client
                    .search(SearchParts::Index(&[self.alias()]))
                    .body(body)
                    .send()
                    .await
                    .map_err(transport)?;
                checked(response).await?
            }
        };
        let mut results = read_results(&answer)?;
        let read = offset + results.hits.len();
        if SearchCursor::has_next(results.hits.len(), query.limit, read, results.total) {
            let view = match (answer["pit_id"].as_str(), pit) {
                (Some(pit), _) => Some(pit.to_owned()),
                (None, Some(pit)) => Some(pit),
                (None, None) if cursor.is_none() => self.open_point_in_time().await,
                (None, None) => None,
            };
            let view = view.as_deref().map_or_else(|| "-".to_owned(), view_of);
            results.next_cursor = Some(SearchCursor::next(cursor.as_ref(), read, view));
        }
        Ok(results)
    }

    /// A point in time of the alias, for the pages after the first; none if it
    /// cannot be opened (the pages then read the alias as it is).
    async fn open_point_in_time(&self) -> Option<String> {
        let opened = async {
            let response = self
                .client
                .open_point_in_time(OpenPointInTimeParts::Index(&[self.alias()]))
                .keep_alive(KEEP_ALIVE)
                .send()
                .await
                .map_err(transport)?;
            Ok::<_, DomainError>(checked(response).await?["id"].as_str().map(str::to_owned))
        };
        match opened.await {
            Ok(pit) => pit,
            Err(error) => {
                tracing::warn!(%error, "opening a point in time failed; the next page reads the index as it is");
                None
            }
        }
    }

    async fn rebuild_in(
        &self,
        docs: Vec<SearchDoc>,
        position: i64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), DomainError> {
        let old = self.current();
        let fresh = concrete_name(self.alias(), Some(&old));
        create_index(&self.client, &fresh, None, true).await?;
        let built = self.build(&fresh, &docs, progress).await;
        let mut during_rebuild = self.applying.lock().await;
        let (log, logged_position) = during_rebuild.take().unwrap_or_default();
        let swapped = async {
            built?;
            // The changes applied while it was built, then the swap, with
            // applies held off: none lands in the old index after its log is read.
            self.bulk(&fresh, operations(&log)).await?;
            self.settle_fresh(&fresh).await?;
            let response = self
                .client
                .indices()
                .update_aliases()
                .body(json!({"actions": [
                    {"remove": {"index": old, "alias": self.alias()}},
                    {"add": {"index": fresh, "alias": self.alias()}},
                ]}))
                .send()
                .await
                .map_err(transport)?;
            checked(response).await?;
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
            self.write_state(|state| {
                state.position = state.position.max(position).max(logged_position);
                state.last_reindex = Some(Utc::now());
            })
            .await
        }
        .await;
        drop(during_rebuild);
        // The index not in use any more: the old one, or the new one if failed.
        let unused = if swapped.is_ok() { &old } else { &fresh };
        if let Err(error) = delete_index(&self.client, unused).await {
            tracing::warn!(%error, index = %unused, "deleting an unused search index failed");
        }
        swapped
    }

    /// Fills `fresh` with `docs`.
    async fn build(
        &self,
        fresh: &str,
        docs: &[SearchDoc],
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), DomainError> {
        let mut done = 0;
        for chunk in docs.chunks(BULK_CHUNK) {
            let operations = chunk
                .iter()
                .map(|doc| Operation::Index(doc.product_id, document(doc)))
                .collect();
            self.bulk_chunk(fresh, operations).await?;
            done += chunk.len() as u64;
            progress(done);
        }
        progress(docs.len() as u64);
        Ok(())
    }

    /// Turns refreshing back on and refreshes, so the first search after the
    /// swap sees every document.
    async fn settle_fresh(&self, fresh: &str) -> Result<(), DomainError> {
        let response = self
            .client
            .indices()
            .put_settings(IndicesPutSettingsParts::Index(&[fresh]))
            .body(json!({"index": {"refresh_interval": "1s"}}))
            .send()
            .await
            .map_err(transport)?;
        checked(response).await?;
        let response = self
            .client
            .indices()
            .refresh(IndicesRefreshParts::Index(&[fresh]))
            .send()
            .await
            .map_err(transport)?;
        checked(response).await.map(drop)
    }
}

#[async_trait]
impl SearchIndex for ElasticIndex {
    async fn unsettled(&self) -> Result<(), DomainError> {
        if self.0.state.lock().await.unsettled {
            return Ok(());
        }
        self.0.write_state(|state| state.unsettled = true).await
    }

    async fn apply(
        &self,
        changes: &[SearchChange],
        position: i64,
        settled: bool,
    ) -> Result<(), DomainError> {
        let mut during_rebuild = self.0.applying.lock().await;
        self.0.bulk(self.0.alias(), operations(changes)).await?;
        if let Some((log, logged_position)) = during_rebuild.as_mut() {
            log.extend(changes.iter().cloned());
            *logged_position = (*logged_position).max(position);
        }
        let unchanged = {
            let state = self.0.state.lock().await;
            state.position >= position && !(settled && state.unsettled)
        };
        if unchanged {
            return Ok(());
        }
        self.0
            .write_state(|state| {
                state.position = state.position.max(position);
                state.unsettled &= !settled;
            })
            .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, DomainError> {
        self.0.search_in(query).await
    }

    async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<String>, DomainError> {
        let Some(matching) = text_clause(prefix) else {
            return Ok(Vec::new());
        };
        let response = self
            .0
            .client
            .search(SearchParts::Index(&[self.0.alias()]))
            .body(json!({"size": limit * 2, "_source": ["name"], "query": matching}))
            .send()
            .await
            .map_err(transport)?;
        let answer = checked(response).await?;
        let mut names: Vec<String> = Vec::with_capacity(limit);
        for hit in answer["hits"]["hits"].as_array().into_iter().flatten() {
            if let Some(name) = hit["_source"]["name"].as_str() {
                if !names.iter().any(|known| known == name) {
                    names.push(name.to_owned());
                }
            }
            if names.len() == limit {
                break;
            }
        }
        Ok(names)
    }

    async fn status(&self) -> Result<IndexStatus, DomainError> {
        let response = self
            .0
            .client
            .count(CountParts::Index(&[self.0.alias()]))
            .send()
            .await
            .map_err(transport)?;
        let documents = checked(response).await?["count"].as_u64().unwrap_or(0);
        let state = self.0.state.lock().await;
        Ok(IndexStatus {
            backend: "elasticsearch",
            documents,
            position: state.position,
            interrupted: self.0.interrupted,
            last_reindex: state.last_reindex,
        })
    }

    async fn begin_rebuild(&self) {
        self.0
            .applying
            .lock()
            .await
            .get_or_insert_with(Default::default);
    }

    async fn rebuild(
        &self,
        docs: Vec<SearchDoc>,
        position: i64,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), DomainError> {
        let _one_at_a_time = self.0.rebuilding.lock().await;
        self.begin_rebuild().await;
        self.0.rebuild_in(docs, position, &*progress).await
    }
}

fn engine(error: impl std::fmt::Display) -> DomainError {
    DomainError::Unavailable(format!("elasticsearch: {error}"))
}

/// A request that failed to get an answer, with its causes (a refused
/// connection, a timeout, a TLS failure).
fn transport(error: elasticsearch::Error) -> DomainError {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    engine(text)
}

/// Statuses worth trying again: too many requests, and the server's own failures.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The body of a successful response; an error naming Elasticsearch's reason
/// otherwise.
async fn checked(response: Response) -> Result<Value, DomainError> {
    let status = response.status_code();
    let body: Value = response.json().await.map_err(engine)?;
    if status.is_success() {
        return Ok(body);
    }
    let error = &body["error"];
    let reason = match (error["type"].as_str(), error["reason"].as_str()) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        _ => body.to_string(),
    };
    Err(engine(format!("{status}: {reason}")))
}

/// The operations of a bulk response to send again (refused with 429 or a
/// 5xx); an error for one refused for good.
fn refused_items(body: &Value, operations: Vec<Operation>) -> Result<Vec<Operation>, DomainError> {
    if body["errors"].as_bool() != Some(true) {
        return Ok(Vec::new());
    }
    let items = body["items"].as_array().map_or(&[][..], Vec::as_slice);
    if items.len() != operations.len() {
        return Err(engine(format!(
            "a bulk response has {} items for {} operations",
            items.len(),
            operations.len()
        )));
    }
    let mut again = Vec::new();
    for (operation, item) in operations.into_iter().zip(items) {
        // Each item is {"index" | "update" | "delete": {"status": …, "error": …}}.
        let result = item
            .as_object()
            .and_then(|item| item.values().next())
            .unwrap_or(&Value::Null);
        let status = result["status"].as_u64().unwrap_or(0);
        match (status, &operation) {
            (200..=299, _) => {}
            // Not there: a deletion is done; a stock change waits for the upsert.
            (404, Operation::Delete(_) | Operation::Update(..)) => {}
            (429 | 500..=599, _) => again.push(operation),
            _ => {
                return Err(engine(format!(
                    "product {} refused ({status}): {}: {}",
                    operation.product().0,
                    result["error"]["type"].as_str().unwrap_or("unknown"),
                    result["error"]["reason"]
                        .as_str()
                        .unwrap_or("no reason given"),
                )))
            }
        }
    }
    Ok(again)
}

/// `<alias>-<millis>`, distinct from `previous`.
fn concrete_name(alias: &str, previous: Option<&str>) -> String {
    let mut millis = Utc::now().timestamp_millis();
    let number = |name: &str| {
        name.strip_prefix(alias)?
            .strip_prefix('-')?
            .parse::<i64>()
            .ok()
    };
    if let Some(previous) = previous.and_then(number) {
        millis = millis.max(previous + 1);
    }
    format!("{alias}-{millis}")
}

/// The settings and mapping of a product index.
pub fn index_definition(alias: Option<&str>, bulk_load: bool) -> Value {
    // A bulk load refreshes once, at its end.
    let refresh = if bulk_load { "-1" } else { "1s" };
    let mut definition = json!({
        "settings": {
            // A cursor pages 99,999 results deep, 100 at a time.
            "index": {"refresh_interval": refresh, "max_result_window": 100_100},
            "analysis": {"normalizer": {"lowercase": {"type": "custom", "filter": ["lowercase"]}}},
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": {"pazar_mapping": 1},
            "properties": {
                "id": {"type": "keyword"},
                "name": {"type": "text"},
                "description": {"type": "text"},
                "sku": {"type": "keyword", "normalizer": "lowercase"},
                "price": {"type": "long"},
                "currency": {"type": "keyword"},
                "available": {"type": "long"},
                "in_stock": {"type": "boolean"},
                "created": {"type": "long"},
            },
        },
    });
    if let Some(alias) = alias {
        definition["aliases"] = json!({ alias: {} });
    }
    definition
}

async fn create_index(
    client: &Elasticsearch,
    name: &str,
    alias: Option<&str>,
    bulk_load: bool,
) -> Result<(), DomainError> {
    let response = client
        .indices()
        .create(IndicesCreateParts::Index(name))
        .body(index_definition(alias, bulk_load))
        .send()
        .await
        .map_err(transport)?;
    checked(response).await.map(drop)
}

async fn delete_index(client: &Elasticsearch, name: &str) -> Result<(), DomainError> {
    let response = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[name]))
        .send()
        .await
        .map_err(transport)?;
    checked(response).await.map(drop)
}

/// The document of `doc`.
fn document(doc: &SearchDoc) -> Value {
    json!({
        "id": doc.product_id.0.to_string(),
        "name": doc.name,
        "description": doc.description,
        "sku": doc.sku,
        "price": doc.price,
        "currency": doc.currency,
        "available": doc.available,
        "in_stock": doc.available > 0,
        "created": doc.created_at.timestamp_micros(),
    })
}

fn operations(changes: &[SearchChange]) -> Vec<Operation> {
    changes
        .iter()
        .map(|change| match change {
            SearchChange::Upsert(doc) => Operation::Index(doc.product_id, document(doc)),
            SearchChange::Stock {
                product_id,
                available,
            } => Operation::Update(
                *product_id,
                json!({"available": available, "in_stock": *available > 0}),
            ),
            SearchChange::Delete(product_id) => Operation::Delete(*product_id),
        })
        .collect()
}

/// The text part of a search: every word in the name or the description
/// (with typos; the last also as a prefix), or the whole text a SKU.
fn text_clause(text: &str) -> Option<Value> {
    let raw = text.trim();
    if raw.is_empty() {
        return None;
    }
    let words = words(raw);
    let last = words.len().saturating_sub(1);
    let per_word: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let mut options = vec![json!({"multi_match": {
                "query": word,
                "fields": ["name^3", "description"],
                "fuzziness": "AUTO:4,8",
            }})];
            if i == last {
                options.push(json!({"multi_match": {
                    "query": word,
                    "type": "phrase_prefix",
                    "fields": ["name^3", "description"],
                    "boost": 0.5,
                }}));
            }
            json!({"bool": {"should": options, "minimum_should_match": 1}})
        })
        .collect();
    let sku = raw.to_lowercase();
    let mut alternatives = vec![
        json!({"term": {"sku": {"value": sku, "boost": 10.0}}}),
        json!({"prefix": {"sku": {"value": sku, "boost": 2.0}}}),
    ];
    if !per_word.is_empty() {
        alternatives.push(json!({"bool": {"must": per_word}}));
    }
    Some(json!({"bool": {"should": alternatives, "minimum_should_match": 1}}))
}

fn price_filter(query: &SearchQuery) -> Option<Value> {
    if query.min_price.is_none() && query.max_price.is_none() {
        return None;
    }
    let mut range = serde_json::Map::new();
    if let Some(min) = query.min_price {
        range.insert("gte".into(), json!(min));
    }
    if let Some(max) = query.max_price {
        range.insert("lte".into(), json!(max));
    }
    Some(json!({"range": {"price": range}}))
}

fn stock_filter(query: &SearchQuery) -> Option<Value> {
    query
        .in_stock
        .map(|in_stock| json!({"term": {"in_stock": in_stock}}))
}

/// All of `clauses` (everything, when there are none).
fn all_of(clauses: Vec<Value>) -> Value {
    if clauses.is_empty() {
        json!({"match_all": {}})
    } else {
        json!({"bool": {"filter": clauses}})
    }
}

/// The search request for `query` (without paging).
pub fn search_body(query: &SearchQuery, created_before: Option<i64>) -> Value {
    let matching = query.text.as_deref().and_then(text_clause);
    let mut filters = Vec::new();
    if let Some(currency) = &query.currency {
        filters.push(json!({"term": {"currency": currency}}));
    }
    if let Some(before) = created_before {
        filters.push(json!({"range": {"created": {"lt": before}}}));
    }
    let mut root = json!({"bool": {"filter": filters}});
    if let Some(matching) = &matching {
        root["bool"]["must"] = json!([matching]);
    }
    let sort = match (query.sort, matching.is_none()) {
        (SearchSort::Relevance, true) | (SearchSort::Newest, _) => json!([{"created": "desc"}]),
        (SearchSort::Relevance, false) => json!([{"_score": "desc"}, {"created": "desc"}]),
        (SearchSort::PriceAsc, _) => json!([{"price": "asc"}]),
        (SearchSort::PriceDesc, _) => json!([{"price": "desc"}]),
        (SearchSort::Availability, _) => json!([{"available": "desc"}]),
    };
    let mut sort = sort.as_array().cloned().unwrap_or_default();
    sort.push(json!({"id": "asc"}));
    let ranges: Vec<Value> = PRICE_BANDS
        .iter()
        .map(|(from, to)| match to {
            Some(to) => json!({"from": from, "to": to}),
            None => json!({"from": from}),
        })
        .collect();
    let post_filters: Vec<Value> = [price_filter(query), stock_filter(query)]
        .into_iter()
        .flatten()
        .collect();
    let mut body = json!({
        "size": query.limit.max(1),
        "track_total_hits": true,
        "_source": false,
        "query": root,
        "sort": sort,
        "aggs": {
            // Each facet with the other filter, not its own.
            "price_bands": {
                "filter": all_of(stock_filter(query).into_iter().collect()),
                "aggs": {"bands": {"range": {"field": "price", "ranges": ranges}}},
            },
            "stock": {
                "filter": all_of(price_filter(query).into_iter().collect()),
                "aggs": {"states": {"filters": {"filters": {
                    "in_stock": {"term": {"in_stock": true}},
                    "sold_out": {"term": {"in_stock": false}},
                }}}},
            },
        },
    });
    if !post_filters.is_empty() {
        body["post_filter"] = json!({"bool": {"filter": post_filters}});
    }
    if matching.is_some() {
        body["highlight"] = json!({
            "pre_tags": ["<b>"],
            "post_tags": ["</b>"],
            "encoder": "html",
            "fields": {
                "name": {"number_of_fragments": 0},
                "description": {"fragment_size": 150, "number_of_fragments": 1},
            },
        });
    }
    body
}

/// The hits, total and facets of a search response.
fn read_results(answer: &Value) -> Result<SearchResults, DomainError> {
    let malformed = || engine("a search response without hits");
    let hits = answer["hits"]["hits"].as_array().ok_or_else(malformed)?;
    let total = answer["hits"]["total"]["value"]
        .as_u64()
        .ok_or_else(malformed)?;
    let hits = hits
        .iter()
        .filter_map(|hit| {
            let product_id = ProductId(hit["_id"].as_str()?.parse().ok()?);
            let highlight = ["name", "description"]
                .iter()
                .find_map(|field| hit["highlight"][field][0].as_str())
                .map(str::to_owned);
            Some(SearchHit {
                product_id,
                highlight,
            })
        })
        .collect();
    let aggregations = &answer["aggregations"];
    let bands = aggregations["price_bands"]["bands"]["buckets"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let price_bands = PRICE_BANDS
        .iter()
        .enumerate()
        .map(|(i, (from, to))| PriceBand {
            from: *from,
            to: *to,
            count: bands
                .get(i)
                .and_then(|band| band["doc_count"].as_u64())
                .unwrap_or(0),
        })
        .collect();
    let states = &aggregations["stock"]["states"]["buckets"];
    Ok(SearchResults {
        hits,
        total,
        facets: Facets {
            price_bands,
            in_stock: states["in_stock"]["doc_count"].as_u64().unwrap_or(0),
            sold_out: states["sold_out"]["doc_count"].as_u64().unwrap_or(0),
        },
        next_cursor: None,
    })
}

/// A point in time as a cursor's view: every byte outside letters, digits,
/// `_` and `-` as `~` and two hex digits.
fn view_of(pit: &str) -> String {
    let mut view = String::with_capacity(pit.len());
    for byte in pit.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            view.push(char::from(byte));
        } else {
            view.push_str(&format!("~{byte:02x}"));
        }
    }
    view
}

/// The point in time a cursor's view names; none for `-` or a view that
/// decodes to nothing sensible (then the alias answers).
fn pit_of(view: &str) -> Option<String> {
    if view == "-" {
        return None;
    }
    let mut bytes = Vec::with_capacity(view.len());
    let mut rest = view.bytes();
    while let Some(byte) = rest.next() {
        if byte == b'~' {
            let high = char::from(rest.next()?).to_digit(16)?;
            let low = char::from(rest.next()?).to_digit(16)?;
            bytes.push((high * 16 + low) as u8);
        } else {
            bytes.push(byte);
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_in_time_survives_the_cursor() {
        let pit = "46ToAwMD+aW/R5==";
        let view = view_of(pit);
        assert!(view
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'~'));
        assert_eq!(pit_of(&view).as_deref(), Some(pit));
        assert_eq!(pit_of("-"), None);
        assert_eq!(pit_of("abc~z"), None);
    }

    #[test]
    fn concrete_names_never_repeat_the_previous_one() {
        let far = format!("pazar-products-{}", Utc::now().timestamp_millis() + 60_000);
        let next = concrete_name("pazar-products", Some(&far));
        assert_ne!(next, far);
        assert!(next > far);
    }
}
