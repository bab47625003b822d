//! The embedded search index: tantivy under `$PAZAR_DATA_DIR/search/`.
//!
//! - **Layout.** `search/index-<n>/` holds one complete index; `search/CURRENT`
//!   names the one in use. A rebuild fills `index-<n+1>` while searches keep
//!   reading `index-<n>`, then swaps `CURRENT` (a rename: atomic) and the
//!   in-memory handle, and deletes the old folder.
//! - **Unsettled changes.** The indexer acknowledges an event once it has
//!   accepted its change, before the commit; the file `search/UNSETTLED` says
//!   accepted changes await a commit. Found at start (the process died), the
//!   index reports itself `interrupted` and is rebuilt from the store.
//! - **Position.** Every commit stores the outbox position of the last event it
//!   applied (and the time of the last rebuild) as tantivy's commit payload, so
//!   the index knows how far it is without another file.
//! - **Text.** `name` (boosted) and `description` are analysed by tantivy's
//!   default tokenizer (words, lower-cased); `sku` is kept whole and
//!   lower-cased, matched exactly or by prefix. Each query word matches exactly
//!   (BM25, which orders results) or within an edit distance (1 from 4 letters,
//!   2 from 8; a transposition counts as one edit); the last word also matches
//!   as a prefix, for search-as-you-type. Every word must match somewhere.
//! - **Paging.** A cursor ([`SearchCursor`]) names the searcher generation the
//!   first page was read from and the offset: pages come from that same point-in-time view
//!   while it is kept (the last 16 generations, 5 minutes), so products added
//!   meanwhile never shift a page (no duplicates, no gaps). An expired
//!   generation falls back to the current view, restricted to products created
//!   before the first page.
//! - Writes and searches run on blocking threads, never on the async runtime.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pazar_actors::{DomainError, ProductId};
use pazar_catalog::search::{
    words, Facets, IndexStatus, PriceBand, SearchChange, SearchCursor, SearchDoc, SearchHit,
    SearchIndex, SearchQuery, SearchResults, SearchSort, PRICE_BANDS,
};
use std::collections::{HashMap, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument,
    Term,
};

/// The marker file of accepted changes not committed yet.
const UNSETTLED: &str = "UNSETTLED";
/// The writer's memory budget (one thread).
const WRITER_MEMORY: usize = 64 * 1024 * 1024;
/// Searcher generations kept for cursors, and for how long.
const KEPT_VIEWS: usize = 16;
const VIEW_TTL: Duration = Duration::from_secs(300);

/// The fields of the schema.
#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    name: Field,
    description: Field,
    sku: Field,
    price: Field,
    currency: Field,
    available: Field,
    in_stock: Field,
    created: Field,
}

impl Fields {
    fn schema() -> (Schema, Self) {
        let mut builder = Schema::builder();
        let fields = Fields {
            id: builder.add_text_field("id", STRING | STORED),
            name: builder.add_text_field("name", TEXT | STORED),
            description: builder.add_text_field("description", TEXT | STORED),
            sku: builder.add_text_field("sku", STRING | STORED),
            price: builder.add_i64_field("price", INDEXED | FAST | STORED),
            currency: builder.add_text_field("currency", STRING | STORED),
            available: builder.add_i64_field("available", INDEXED | FAST | STORED),
            in_stock: builder.add_u64_field("in_stock", INDEXED | FAST),
            created: builder.add_i64_field("created", INDEXED | FAST | STORED),
        };
        (builder.build(), fields)
    }

    fn document(&self, doc: &SearchDoc) -> TantivyDocument {
        let mut document = TantivyDocument::default();
        document.add_text(self.id, doc.product_id.0.to_string());
        document.add_text(self.name, &doc.name);
        document.add_text(self.description, &doc.description);
        document.add_text(self.sku, doc.sku.to_lowercase());
        document.add_i64(self.price, doc.price);
        document.add_text(self.currency, &doc.currency);
        document.add_i64(self.available, doc.available);
        document.add_u64(self.in_stock, u64::from(doc.available > 0));
        document.add_i64(self.created, doc.created_at.timestamp_micros());
        document
    }

    fn read(&self, document: &TantivyDocument) -> Option<SearchDoc> {
        let text = |field| {
            document
                .get_first(field)
                .and_then(|value| value.as_str())
                .map(str::to_owned)
        };
        let number = |field| document.get_first(field).and_then(|value| value.as_i64());
        Some(SearchDoc {
            product_id: ProductId(text(self.id)?.parse().ok()?),
            name: text(self.name)?,
            description: text(self.description).unwrap_or_default(),
            sku: text(self.sku)?,
            price: number(self.price)?,
            currency: text(self.currency)?,
            available: number(self.available)?,
            created_at: DateTime::from_timestamp_micros(number(self.created)?)?,
        })
    }

    fn id_term(&self, product: ProductId) -> Term {
        Term::from_field_text(self.id, &product.0.to_string())
    }
}

/// What a commit stores besides the documents.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Payload {
    position: i64,
    last_reindex: Option<DateTime<Utc>>,
}

/// One index folder, open.
struct Generation {
    number: u64,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    payload: Mutex<Payload>,
}

impl Generation {
    fn open(folder: &Path, number: u64) -> tantivy::Result<Self> {
        std::fs::create_dir_all(folder)?;
        let (schema, _) = Fields::schema();
        let directory = MmapDirectory::open(folder)?;
        let index = Index::open_or_create(directory, schema)?;
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let payload = index
            .load_metas()?
            .payload
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Ok(Self {
            number,
            reader,
            writer: Mutex::new(writer),
            payload: Mutex::new(payload),
        })
    }

    fn commit(&self, writer: &mut IndexWriter, payload: Payload) -> tantivy::Result<()> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&serde_json::to_string(&payload).unwrap_or_default());
        prepared.commit()?;
        *self.payload.lock().unwrap_or_else(|e| e.into_inner()) = payload;
        self.reader.reload()
    }
}

/// Point-in-time views kept for cursors, by searcher generation id.
#[derive(Default)]
struct Views(Mutex<VecDeque<(u64, Instant, Searcher)>>);

impl Views {
    fn keep(&self, searcher: &Searcher) {
        let id = searcher.generation().generation_id();
        let mut views = self.0.lock().unwrap_or_else(|e| e.into_inner());
        views.retain(|(_, at, _)| at.elapsed() < VIEW_TTL);
        if !views.iter().any(|(kept, _, _)| *kept == id) {
            views.push_back((id, Instant::now(), searcher.clone()));
        }
        while views.len() > KEPT_VIEWS {
            views.pop_front();
        }
    }

    fn get(&self, id: u64) -> Option<Searcher> {
        let views = self.0.lock().unwrap_or_else(|e| e.into_inner());
        views
            .iter()
            .find(|(kept, at, _)| *kept == id && at.elapsed() < VIEW_TTL)
            .map(|(_, _, searcher)| searcher.clone())
    }
}

/// The tantivy index of the catalog (a cheap handle).
#[derive(Clone)]
pub struct TantivyIndex(Arc<Inner>);

struct Inner {
    root: PathBuf,
    /// The marker of accepted changes not committed yet was there at open.
    interrupted: bool,
    fields: Fields,
    current: RwLock<Arc<Generation>>,
    views: Views,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
    /// Taken by each apply and by a rebuild's swap; while a rebuild runs, the
    /// changes applied to the old index are kept here and applied to the new
    /// one before it is swapped in, so none is lost.
    applying: Mutex<Option<(Vec<SearchChange>, i64)>>,
}

impl TantivyIndex {
    /// Opens the index under `root` (`$PAZAR_DATA_DIR/search`), creating an
    /// empty one if there is none (or it cannot be read: it is a projection,
    /// rebuilt from the store).
    pub fn open(root: &Path) -> Result<Self, DomainError> {
        std::fs::create_dir_all(root).map_err(engine)?;
        let number = std::fs::read_to_string(root.join("CURRENT"))
            .ok()
            .and_then(|text| text.trim().strip_prefix("index-")?.parse().ok())
            .unwrap_or(0);
        let folder = root.join(format!("index-{number}"));
        let generation = match Generation::open(&folder, number) {
            Ok(generation) => generation,
            Err(error) => {
                tracing::warn!(%error, folder = %folder.display(), "the search index cannot be opened; starting an empty one");
                let _ = std::fs::remove_dir_all(&folder);
                Generation::open(&folder, number).map_err(engine)?
            }
        };
        write_current(root, number).map_err(engine)?;
        let (_, fields) = Fields::schema();
        Ok(Self(Arc::new(Inner {
            root: root.to_owned(),
            interrupted: root.join(UNSETTLED).exists(),
            fields,
            current: RwLock::new(Arc::new(generation)),
            views: Views::default(),
            rebuilding: tokio::sync::Mutex::new(()),
            applying: Mutex::new(None),
        })))
    }
}

impl Inner {
    fn current(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies `changes` to `generation` and commits them at `position`.
    fn apply_to(
        &self,
        generation: &Generation,
        changes: &[SearchChange],
        position: i64,
    ) -> tantivy::Result<()> {
        let fields = self.fields;
        let searcher = generation.reader.searcher();
        let mut writer = generation.writer.lock().unwrap_or_else(|e| e.into_inner());
        // Documents written earlier in this batch (a stock change right after
        // a product's creation finds it here, not yet in the searcher).
        let mut written: HashMap<ProductId, SearchDoc> = HashMap::new();
        for change in changes {
            match change {
                SearchChange::Upsert(doc) => {
                    writer.delete_term(fields.id_term(doc.product_id));
                    writer.add_document(fields.document(doc))?;
                    written.insert(doc.product_id, doc.clone());
                }
                SearchChange::Stock {
                    product_id,
                    available,
                } => {
                    let known = match written.get(product_id) {
                        Some(doc) => Some(doc.clone()),
                        None => stored(&searcher, fields, *product_id)?,
                    };
                    // A product not indexed yet gets its stock with its upsert.
                    let Some(mut doc) = known else { continue };
                    doc.available = *available;
                    writer.delete_term(fields.id_term(*product_id));
                    writer.add_document(fields.document(&doc))?;
                    written.insert(*product_id, doc);
                }
                SearchChange::Delete(product_id) => {
                    writer.delete_term(fields.id_term(*product_id));
                    written.remove(product_id);
                }
            }
        }
        let mut payload = *generation.payload.lock().unwrap_or_else(|e| e.into_inner());
        payload.position = payload.position.max(position);
        generation.commit(&mut writer, payload)
    }

    fn search_in(&self, query: &SearchQuery) -> Result<SearchResults, DomainError> {
        let fields = self.fields;
        let cursor = query
            .cursor
            .as_deref()
            .map(SearchCursor::parse)
            .transpose()?;
        let kept = cursor
            .as_ref()
            .and_then(|cursor| cursor.view.parse().ok())
            .and_then(|view| self.views.get(view));
        let searcher = match &kept {
            Some(searcher) => searcher.clone(),
            None => self.current().reader.searcher(),
        };
        let created_before = match (&cursor, &kept) {
            // The view expired: what was created after the first page stays out.
            (Some(cursor), None) => Some(cursor.created_before),
            _ => None,
        };
        let text = query.text.as_deref().map(words).unwrap_or_default();
        let matching = text_query(fields, &text, query.text.as_deref());
        let mut filters = filters(fields, query, created_before);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(matching) = &matching {
            clauses.push((Occur::Must, matching.box_clone()));
        }
        clauses.append(&mut filters);
        let all = whole(clauses);
        let offset = cursor.as_ref().map_or(query.offset, |cursor| cursor.offset);
        let limit = query.limit.max(1);
        let top = TopDocs::with_limit(limit).and_offset(offset);
        let sort = match (query.sort, matching.is_none()) {
            (SearchSort::Relevance, true) => SearchSort::Newest,
            (sort, _) => sort,
        };
        let (addresses, total): (Vec<DocAddress>, usize) = match sort {
            SearchSort::Relevance => {
                let (docs, total) = searcher
                    .search(&*all, &(top.order_by_score(), Count))
                    .map_err(engine)?;
                (
                    docs.into_iter().map(|(_, address)| address).collect(),
                    total,
                )
            }
            SearchSort::PriceAsc
            | SearchSort::PriceDesc
            | SearchSort::Newest
            | SearchSort::Availability => {
                let (field, order) = match sort {
                    SearchSort::PriceAsc => ("price", Order::Asc),
                    SearchSort::PriceDesc => ("price", Order::Desc),
                    SearchSort::Availability => ("available", Order::Desc),
                    _ => ("created", Order::Desc),
                };
                let (docs, total) = searcher
                    .search(
                        &*all,
                        &(top.order_by_fast_field::<i64>(field, order), Count),
                    )
                    .map_err(engine)?;
                (
                    docs.into_iter().map(|(_, address)| address).collect(),
                    total,
                )
            }
        };
        let highlighter = match &matching {
            Some(matching) => Some(
                SnippetGenerator::create(&searcher, &**matching, fields.name)
                    .and_then(|name| {
                        SnippetGenerator::create(&searcher, &**matching, fields.description)
                            .map(|description| (name, description))
                    })
                    .map_err(engine)?,
            ),
            None => None,
        };
        let mut hits = Vec::with_capacity(addresses.len());
        for address in &addresses {
            let document: TantivyDocument = searcher.doc(*address).map_err(engine)?;
            let Some(doc) = fields.read(&document) else {
                continue;
            };
            let highlight = highlighter.as_ref().and_then(|(name, description)| {
                let snippet = name.snippet_from_doc(&document);
                let snippet = if snippet.highlighted().is_empty() {
                    description.snippet_from_doc(&document)
                } else {
                    snippet
                };
                (!snippet.highlighted().is_empty()).then(|| snippet.to_html())
            });
            hits.push(SearchHit {
                product_id: doc.product_id,
                highlight,
            });
        }
        let facets = facets(
            &searcher,
            fields,
            matching.as_deref(),
            query,
            created_before,
        )?;
        let next_offset = offset + addresses.len();
        let next_cursor = SearchCursor::has_next(addresses.len(), limit, next_offset, total as u64)
            .then(|| {
                self.views.keep(&searcher);
                let view = searcher.generation().generation_id().to_string();
                SearchCursor::next(cursor.as_ref(), next_offset, view)
            });
        Ok(SearchResults {
            hits,
            total: total as u64,
            facets,
            next_cursor,
        })
    }

    fn suggest_in(&self, prefix: &str, limit: usize) -> Result<Vec<String>, DomainError> {
        let fields = self.fields;
        let words = words(prefix);
        let Some(matching) = text_query(fields, &words, Some(prefix)) else {
            return Ok(Vec::new());
        };
        let searcher = self.current().reader.searcher();
        let docs = searcher
            .search(&*matching, &TopDocs::with_limit(limit * 2).order_by_score())
            .map_err(engine)?;
        let mut names: Vec<String> = Vec::with_capacity(limit);
        for (_, address) in docs {
            let document: TantivyDocument = searcher.doc(address).map_err(engine)?;
            if let Some(name) = document
                .get_first(fields.name)
                .and_then(|value| value.as_str())
            {
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

    fn rebuild_in(
        &self,
        docs: Vec<SearchDoc>,
        position: i64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), DomainError> {
        let number = self.current().number + 1;
        let folder = self.root.join(format!("index-{number}"));
        let _ = std::fs::remove_dir_all(&folder);
        let fresh = Generation::open(&folder, number).map_err(engine)?;
        // Changes applied to the old index are logged (since `begin_rebuild`).
        self.begin_log();
        let built = self.build(&fresh, &docs, position, progress);
        let mut during_rebuild = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        let (log, logged_position) = during_rebuild.take().unwrap_or_default();
        built?;
        // The changes applied while it was built, then the swap, with applies
        // held off: none lands in the old index after its log is read.
        self.apply_to(&fresh, &log, logged_position.max(position))
            .map_err(engine)?;
        write_current(&self.root, number).map_err(engine)?;
        let old = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|e| e.into_inner()),
            Arc::new(fresh),
        );
        drop(during_rebuild);
        let old_folder = self.root.join(format!("index-{}", old.number));
        drop(old);
        // Searchers still reading it keep its files open (mmap); on Linux
        // removing the folder under them is harmless.
        let _ = std::fs::remove_dir_all(old_folder);
        Ok(())
    }

    /// Starts logging the changes applied (kept if already started).
    fn begin_log(&self) {
        self.applying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Default::default);
    }

    /// Fills a new index with `docs`, committed at `position`.
    fn build(
        &self,
        fresh: &Generation,
        docs: &[SearchDoc],
        position: i64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), DomainError> {
        {
            let mut writer = fresh.writer.lock().unwrap_or_else(|e| e.into_inner());
            for (done, doc) in docs.iter().enumerate() {
                writer
                    .add_document(self.fields.document(doc))
                    .map_err(engine)?;
                if (done + 1) % 1000 == 0 {
                    progress(done as u64 + 1);
                }
            }
            progress(docs.len() as u64);
            let payload = Payload {
                position,
                last_reindex: Some(Utc::now()),
            };
            fresh.commit(&mut writer, payload).map_err(engine)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SearchIndex for TantivyIndex {
    async fn unsettled(&self) -> Result<(), DomainError> {
        std::fs::write(self.0.root.join(UNSETTLED), b"").map_err(engine)
    }

    async fn apply(
        &self,
        changes: &[SearchChange],
        position: i64,
        settled: bool,
    ) -> Result<(), DomainError> {
        let this = self.0.clone();
        let changes = changes.to_vec();
        blocking(move || {
            let mut during_rebuild = this.applying.lock().unwrap_or_else(|e| e.into_inner());
            let generation = this.current();
            this.apply_to(&generation, &changes, position)
                .map_err(engine)?;
            if let Some((log, logged_position)) = during_rebuild.as_mut() {
                log.extend(changes.iter().cloned());
                *logged_position = (*logged_position).max(position);
            }
            if settled {
                match std::fs::remove_file(this.root.join(UNSETTLED)) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        return Err(engine(error))
                    }
                    _ => {}
                }
            }
            Ok(())
        })
        .await
    }

    async fn begin_rebuild(&self) {
        self.0.begin_log();
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, DomainError> {
        let this = self.0.clone();
        let query = query.clone();
        blocking(move || this.search_in(&query)).await
    }

    async fn suggest(&self, prefix: &str, limit: usize) -> Result<Vec<String>, DomainError> {
        let this = self.0.clone();
        let prefix = prefix.to_owned();
        blocking(move || this.suggest_in(&prefix, limit)).await
    }

    async fn status(&self) -> Result<IndexStatus, DomainError> {
        let generation = self.0.current();
        let payload = *generation.payload.lock().unwrap_or_else(|e| e.into_inner());
        Ok(IndexStatus {
            backend: "tantivy",
            documents: generation.reader.searcher().num_docs(),
            position: payload.position,
            interrupted: self.0.interrupted,
            last_reindex: payload.last_reindex,
        })
    }

    async fn rebuild(
        &self,
        docs: Vec<SearchDoc>,
        position: i64,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), DomainError> {
        let _one_at_a_time = self.0.rebuilding.lock().await;
        let this = self.0.clone();
        blocking(move || this.rebuild_in(docs, position, &*progress)).await
    }
}

/// Runs `work` on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DomainError> + Send + 'static,
) -> Result<T, DomainError> {
    tokio::task::spawn_blocking(work).await.map_err(engine)?
}

fn engine(error: impl std::fmt::Display) -> DomainError {
    DomainError::Unavailable(format!("search index: {error}"))
}

fn write_current(root: &Path, number: u64) -> std::io::Result<()> {
    let temporary = root.join("CURRENT.tmp");
    std::fs::write(&temporary, format!("index-{number}\n"))?;
    std::fs::rename(temporary, root.join("CURRENT"))
}

/// The stored document of `product`, if indexed.
fn stored(
    searcher: &Searcher,
    fields: Fields,
    product: ProductId,
) -> tantivy::Result<Option<SearchDoc>> {
    let query = TermQuery::new(fields.id_term(product), IndexRecordOption::Basic);
    let found = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
    match found.first() {
        Some((_, address)) => {
            let document: TantivyDocument = searcher.doc(*address)?;
            Ok(fields.read(&document))
        }
        None => Ok(None),
    }
}

/// The edit distance a word may be off by: none under 4 letters, 1 from 4, 2 from 8.
fn distance(word: &str) -> u8 {
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The text part of a search: every word must match the name or the
/// description (exactly, which scores; or within its edit distance; the last
/// word also as a prefix) — or the whole text is a SKU, exactly or a prefix.
fn text_query(fields: Fields, words: &[String], raw: Option<&str>) -> Option<Box<dyn Query>> {
    let raw = raw.map(str::trim).filter(|raw| !raw.is_empty());
    if words.is_empty() && raw.is_none() {
        return None;
    }
    let last = words.len().saturating_sub(1);
    let per_word: Vec<(Occur, Box<dyn Query>)> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let mut options: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, boost) in [(fields.name, 3.0), (fields.description, 1.0)] {
                let term = Term::from_field_text(field, word);
                options.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                        boost,
                    )),
                ));
                let distance = distance(word);
                if distance > 0 {
                    options.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(
                            Box::new(FuzzyTermQuery::new(term.clone(), distance, true)),
                            boost * 0.2,
                        )),
                    ));
                }
                if i == last {
                    options.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(
                            Box::new(FuzzyTermQuery::new_prefix(term, 0, true)),
                            boost * 0.5,
                        )),
                    ));
                }
            }
            (
                Occur::Must,
                Box::new(BooleanQuery::new(options)) as Box<dyn Query>,
            )
        })
        .collect();
    let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if !per_word.is_empty() {
        alternatives.push((Occur::Should, Box::new(BooleanQuery::new(per_word))));
    }
    if let Some(raw) = raw {
        let sku = raw.to_lowercase();
        {
            let term = Term::from_field_text(fields.sku, &sku);
            alternatives.push((
                Occur::Should,
                Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic)),
                    10.0,
                )),
            ));
            alternatives.push((
                Occur::Should,
                Box::new(BoostQuery::new(
                    Box::new(FuzzyTermQuery::new_prefix(term, 0, false)),
                    2.0,
                )),
            ));
        }
    }
    Some(Box::new(BooleanQuery::new(alternatives)))
}

/// The filters of a search, as clauses every result must meet.
fn filters(
    fields: Fields,
    query: &SearchQuery,
    created_before: Option<i64>,
) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if query.min_price.is_some() || query.max_price.is_some() {
        clauses.push((
            Occur::Must,
            price_range(fields, query.min_price, query.max_price),
        ));
    }
    if let Some(currency) = &query.currency {
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(fields.currency, currency),
                IndexRecordOption::Basic,
            )),
        ));
    }
    if let Some(in_stock) = query.in_stock {
        clauses.push((Occur::Must, stock_is(fields, in_stock)));
    }
    if let Some(before) = created_before {
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Unbounded,
                Bound::Excluded(Term::from_field_i64(fields.created, before)),
            )),
        ));
    }
    clauses
}

fn price_range(fields: Fields, from: Option<i64>, to: Option<i64>) -> Box<dyn Query> {
    let bound = |value: Option<i64>| match value {
        Some(value) => Bound::Included(Term::from_field_i64(fields.price, value)),
        None => Bound::Unbounded,
    };
    Box::new(RangeQuery::new(bound(from), bound(to)))
}

fn stock_is(fields: Fields, in_stock: bool) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_u64(fields.in_stock, u64::from(in_stock)),
        IndexRecordOption::Basic,
    ))
}

/// `clauses` as one query (everything, when there are none).
fn whole(clauses: Vec<(Occur, Box<dyn Query>)>) -> Box<dyn Query> {
    if clauses.is_empty() {
        Box::new(AllQuery)
    } else {
        Box::new(BooleanQuery::new(clauses))
    }
}

/// Counts over every match: per price band, in stock and sold out. Each facet
/// counts with the other filters applied but not its own, so a client sees
/// what choosing another band or the other stock state would give.
fn facets(
    searcher: &Searcher,
    fields: Fields,
    matching: Option<&dyn Query>,
    query: &SearchQuery,
    created_before: Option<i64>,
) -> Result<Facets, DomainError> {
    let count = |extra: Box<dyn Query>, without_price: bool, without_stock: bool| {
        let mut narrowed = query.clone();
        if without_price {
            narrowed.min_price = None;
            narrowed.max_price = None;
        }
        if without_stock {
            narrowed.in_stock = None;
        }
        let mut clauses = filters(fields, &narrowed, created_before);
        if let Some(matching) = matching {
            clauses.push((Occur::Must, matching.box_clone()));
        }
        clauses.push((Occur::Must, extra));
        searcher
            .search(&*whole(clauses), &Count)
            .map(|count| count as u64)
            .map_err(engine)
    };
    let mut price_bands = Vec::with_capacity(PRICE_BANDS.len());
    for (from, to) in PRICE_BANDS {
        let band = price_range(fields, Some(from), to.map(|to| to - 1));
        price_bands.push(PriceBand {
            from,
            to,
            count: count(band, true, false)?,
        });
    }
    Ok(Facets {
        price_bands,
        in_stock: count(stock_is(fields, true), false, true)?,
        sold_out: count(stock_is(fields, false), false, true)?,
    })
}
