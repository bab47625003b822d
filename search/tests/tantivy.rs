//! The embedded index against its promises: relevance, typos, prefixes, every
//! filter, sort and facet, stable paging while products are added, stock and
//! deletions applied, and a rebuild that never leaves a search unanswered.

use chrono::{Duration, Utc};
use pazar_actors::{DomainError, ProductId};
use pazar_catalog::search::{
    SearchChange, SearchDoc, SearchIndex, SearchQuery, SearchResults, SearchSort,
};
use pazar_search::TantivyIndex;
use std::collections::HashSet;
use std::sync::Arc;

fn doc(name: &str, description: &str, sku: &str, price: i64, available: i64) -> SearchDoc {
    SearchDoc {
        product_id: ProductId(uuid::Uuid::new_v4()),
        name: name.into(),
        description: description.into(),
        sku: sku.into(),
        price,
        currency: "EUR".into(),
        available,
        created_at: Utc::now(),
    }
}

/// A fixed catalog, created one second apart (oldest first).
fn catalog() -> Vec<SearchDoc> {
    let start = Utc::now() - Duration::hours(1);
    let mut docs = vec![
        doc(
            "Porcelain Teapot",
            "A white teapot for four cups",
            "TEA-POT-1",
            2_500,
            10,
        ),
        doc(
            "Cast Iron Teapot",
            "Heavy teapot that keeps tea hot",
            "TEA-POT-2",
            6_900,
            0,
        ),
        doc(
            "Tea Cup",
            "Porcelain cup, goes with the teapot",
            "TEA-CUP-1",
            800,
            50,
        ),
        doc(
            "Coffee Grinder",
            "Burr grinder for espresso beans",
            "COF-GRD-1",
            12_000,
            3,
        ),
        doc(
            "Espresso Machine",
            "Pump espresso machine with milk frother",
            "COF-ESP-1",
            59_900,
            1,
        ),
        doc(
            "Kitchen Scale",
            "Digital scale, precise to one gram",
            "KIT-SCL-1",
            1_999,
            25,
        ),
    ];
    for (i, doc) in docs.iter_mut().enumerate() {
        doc.created_at = start + Duration::seconds(i as i64);
    }
    docs
}

async fn index_of(docs: &[SearchDoc]) -> (tempfile::TempDir, TantivyIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = TantivyIndex::open(&dir.path().join("search")).unwrap();
    let changes: Vec<SearchChange> = docs.iter().cloned().map(SearchChange::Upsert).collect();
    index.apply(&changes, 7, true).await.unwrap();
    (dir, index)
}

fn query(text: &str) -> SearchQuery {
    SearchQuery {
        text: (!text.is_empty()).then(|| text.to_owned()),
        limit: 20,
        ..SearchQuery::default()
    }
}

fn names(results: &SearchResults, docs: &[SearchDoc]) -> Vec<String> {
    results
        .hits
        .iter()
        .map(|hit| {
            docs.iter()
                .find(|doc| doc.product_id == hit.product_id)
                .map(|doc| doc.name.clone())
                .unwrap_or_else(|| format!("unknown {}", hit.product_id))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_match_ranks_above_a_description_match() {
    let docs = catalog();
    let (_dir, index) = index_of(&docs).await;
    let found = index.search(&query("teapot")).await.unwrap();
    let names = names(&found, &docs);
    assert_eq!(found.total, 3, "{names:?}");
    // Both teapots have it in the name (boosted); the cup only in its description.
    assert_eq!(names[2], "Tea Cup", "{names:?}");
    assert!(found.hits[0]
        .highlight
        .as_deref()
        .is_some_and(|text| text.contains("<b>Teapot</b>")));
    // Every word must match: "porcelain teapot" is the one porcelain teapot
    // first, then the cup whose description has both words.
    let both = index.search(&query("porcelain teapot")).await.unwrap();
    assert_eq!(names_of(&both, &docs), ["Porcelain Teapot", "Tea Cup"],);
}

fn names_of(results: &SearchResults, docs: &[SearchDoc]) -> Vec<String> {
    names(results, docs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typos_a_missing_letter_and_a_transposition_still_find_the_product() {
    let docs = catalog();
    let (_dir, index) = index_of(&docs).await;
    for typo in ["espresdo", "espreso", "espersso", "grindr", "kitchne scale"] {
        let found = index.search(&query(typo)).await.unwrap();
        assert!(found.total >= 1, "{typo}: nothing found");
    }
    let found = index.search(&query("machnie")).await.unwrap();
    assert_eq!(names_of(&found, &docs), ["Espresso Machine"]);
    // Words under four letters must be exact: "cap" is not "cup".
    assert_eq!(index.search(&query("cap")).await.unwrap().total, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_word_matches_as_a_prefix_and_a_sku_exactly_or_by_prefix() {
    let docs = catalog();
    let (_dir, index) = index_of(&docs).await;
    let found = index.search(&query("espresso mach")).await.unwrap();
    assert_eq!(names_of(&found, &docs), ["Espresso Machine"]);
    let found = index.search(&query("gri")).await.unwrap();
    assert_eq!(names_of(&found, &docs), ["Coffee Grinder"]);
    let found = index.search(&query("cof-esp-1")).await.unwrap();
    assert_eq!(names_of(&found, &docs)[0], "Espresso Machine");
    let found = index.search(&query("TEA-POT")).await.unwrap();
    let names = names_of(&found, &docs);
    assert!(names.contains(&"Porcelain Teapot".to_owned()), "{names:?}");
    assert!(names.contains(&"Cast Iron Teapot".to_owned()), "{names:?}");
    let suggestions = index.suggest("tea", 8).await.unwrap();
    assert!(
        suggestions.contains(&"Tea Cup".to_owned()),
        "{suggestions:?}"
    );
    assert!(
        suggestions.contains(&"Porcelain Teapot".to_owned()),
        "{suggestions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_sort_and_facet() {
    let docs = catalog();
    let (_dir, index) = index_of(&docs).await;
    let all = |sort| SearchQuery { sort, ..query("") };
    let by = |sort| {
        let index = index.clone();
        let docs = docs.clone();
        async move { names_of(&index.search(&all(sort)).await.unwrap(), &docs) }
    };
    assert_eq!(by(SearchSort::PriceAsc).await[0], "Tea Cup");
    assert_eq!(by(SearchSort::PriceDesc).await[0], "Espresso Machine");
    assert_eq!(by(SearchSort::Newest).await[0], "Kitchen Scale");
    assert_eq!(by(SearchSort::Availability).await[0], "Tea Cup");
    // Without text, relevance lists newest first.
    assert_eq!(by(SearchSort::Relevance).await[0], "Kitchen Scale");

    let filtered = |query: SearchQuery| {
        let index = index.clone();
        async move { index.search(&query).await.unwrap() }
    };
    let cheap = filtered(SearchQuery {
        min_price: Some(800),
        max_price: Some(2_500),
        ..query("")
    })
    .await;
    assert_eq!(cheap.total, 3); // 8.00, 19.99 and 25.00
    let in_stock = filtered(SearchQuery {
        in_stock: Some(true),
        ..query("teapot")
    })
    .await;
    // The cup is in stock too, and its description mentions the teapot.
    assert_eq!(names_of(&in_stock, &docs), ["Porcelain Teapot", "Tea Cup"]);
    let sold_out = filtered(SearchQuery {
        in_stock: Some(false),
        ..query("")
    })
    .await;
    assert_eq!(names_of(&sold_out, &docs), ["Cast Iron Teapot"]);
    let dollars = filtered(SearchQuery {
        currency: Some("USD".into()),
        ..query("")
    })
    .await;
    assert_eq!(dollars.total, 0);

    // Facets count every match, each with the other filters but not its own.
    let teapots = filtered(SearchQuery {
        in_stock: Some(true),
        ..query("teapot")
    })
    .await;
    assert_eq!((teapots.facets.in_stock, teapots.facets.sold_out), (2, 1));
    let bands: Vec<u64> = teapots.facets.price_bands.iter().map(|b| b.count).collect();
    // In stock: the porcelain teapot (25.00) and the cup (8.00).
    assert_eq!(bands, [1, 1, 0, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_changes_and_deletions_show_at_once() {
    let docs = catalog();
    let (_dir, index) = index_of(&docs).await;
    let scale = docs.iter().find(|d| d.name == "Kitchen Scale").unwrap();
    index
        .apply(
            &[SearchChange::Stock {
                product_id: scale.product_id,
                available: 0,
            }],
            8,
            true,
        )
        .await
        .unwrap();
    let sold_out = index
        .search(&SearchQuery {
            in_stock: Some(false),
            ..query("")
        })
        .await
        .unwrap();
    assert_eq!(sold_out.total, 2);
    // The text is still found after a stock-only change.
    assert_eq!(index.search(&query("scale")).await.unwrap().total, 1);
    index
        .apply(&[SearchChange::Delete(scale.product_id)], 9, true)
        .await
        .unwrap();
    assert_eq!(index.search(&query("scale")).await.unwrap().total, 0);
    let status = index.status().await.unwrap();
    assert_eq!((status.documents, status.position), (5, 9));
    // A stock change for a product the index has not seen is skipped.
    index
        .apply(
            &[SearchChange::Stock {
                product_id: ProductId(uuid::Uuid::new_v4()),
                available: 3,
            }],
            10,
            true,
        )
        .await
        .unwrap();
    assert_eq!(index.status().await.unwrap().documents, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_by_cursor_over_1000_products_has_no_duplicates_or_gaps_while_products_are_added() {
    let start = Utc::now() - Duration::hours(2);
    let docs: Vec<SearchDoc> = (0..1_000)
        .map(|i| {
            let mut doc = doc(
                &format!("Widget {i}"),
                "a widget",
                &format!("W-{i}"),
                100 + i % 37,
                5,
            );
            doc.created_at = start + Duration::milliseconds(i);
            doc
        })
        .collect();
    let (_dir, index) = index_of(&docs).await;
    for sort in [
        SearchSort::Newest,
        SearchSort::PriceAsc,
        SearchSort::Relevance,
    ] {
        let mut seen = HashSet::new();
        let mut cursor = None;
        let mut pages = 0;
        let mut first_total = None;
        loop {
            let page = index
                .search(&SearchQuery {
                    text: (sort == SearchSort::Relevance).then(|| "widget".to_owned()),
                    sort,
                    limit: 37,
                    cursor: cursor.clone(),
                    ..SearchQuery::default()
                })
                .await
                .unwrap();
            for hit in &page.hits {
                assert!(seen.insert(hit.product_id), "{sort:?}: a duplicate");
            }
            // Every page counts the first page's view.
            assert_eq!(
                *first_total.get_or_insert(page.total),
                page.total,
                "{sort:?}"
            );
            // Meanwhile new widgets arrive (cheap and new: they would land
            // on the first pages of every order).
            let added = doc(
                &format!("Widget new {pages} {sort:?}"),
                "a widget",
                "N",
                1,
                5,
            );
            index
                .apply(&[SearchChange::Upsert(added)], 0, true)
                .await
                .unwrap();
            pages += 1;
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let original: HashSet<ProductId> = docs.iter().map(|d| d.product_id).collect();
        assert!(original.is_subset(&seen), "{sort:?}: gaps");
        // Every page came from the first page's view: none more, none fewer
        // (the widgets added by the sorts before this one are in it).
        let total = first_total.unwrap() as usize;
        assert_eq!(seen.len(), total, "{sort:?}");
        assert_eq!(pages, total.div_ceil(37), "{sort:?}");
    }
    let bad = index
        .search(&SearchQuery {
            cursor: Some("not-a-cursor".into()),
            ..query("")
        })
        .await;
    assert!(
        matches!(bad, Err(DomainError::Invalid { ref field, .. }) if field == "cursor"),
        "{bad:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_swaps_in_a_new_index_while_searches_keep_answering() {
    let docs: Vec<SearchDoc> = (0..5_000)
        .map(|i| {
            doc(
                &format!("Gadget {i}"),
                "a gadget",
                &format!("G-{i}"),
                100,
                1,
            )
        })
        .collect();
    let (dir, index) = index_of(&docs).await;
    let searching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (index, searching) = (index.clone(), searching.clone());
            tokio::spawn(async move {
                let mut answered = 0;
                while searching.load(std::sync::atomic::Ordering::Relaxed) {
                    let found = index.search(&query("gadget")).await.unwrap();
                    assert_eq!(found.total, 5_000, "a partial result");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let told = progress.clone();
    index
        .rebuild(
            docs.clone(),
            42,
            Arc::new(move |done| told.store(done, std::sync::atomic::Ordering::Relaxed)),
        )
        .await
        .unwrap();
    searching.store(false, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        assert!(client.await.unwrap() > 0);
    }
    assert_eq!(progress.load(std::sync::atomic::Ordering::Relaxed), 5_000);
    let status = index.status().await.unwrap();
    assert_eq!((status.documents, status.position), (5_000, 42));
    assert!(status.last_reindex.is_some());
    // Opened again, the index is the rebuilt one.
    drop(index);
    let reopened = TantivyIndex::open(&dir.path().join("search")).unwrap();
    assert_eq!(reopened.status().await.unwrap().documents, 5_000);
    let folders = std::fs::read_dir(dir.path().join("search"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(folders, 1, "the old index folder is removed");
}

/// A rebuild's documents are read from the store before it runs; changes that
/// reach the index after that read (a product added, one deleted, one sold
/// out) are in the rebuilt index too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_after_a_rebuilds_read_are_in_the_rebuilt_index() {
    let docs: Vec<SearchDoc> = (0..2_000)
        .map(|i| doc(&format!("Gizmo {i}"), "a gizmo", &format!("Z-{i}"), 100, 1))
        .collect();
    let (_dir, index) = index_of(&docs).await;
    index.begin_rebuild().await;
    let snapshot = docs.clone(); // what the store said when the rebuild read it
    let late = doc("Late Arrival", "came after the read", "LATE-1", 100, 4);
    index
        .apply(
            &[
                SearchChange::Upsert(late),
                SearchChange::Delete(docs[0].product_id),
                SearchChange::Stock {
                    product_id: docs[1].product_id,
                    available: 0,
                },
            ],
            50,
            true,
        )
        .await
        .unwrap();
    index.rebuild(snapshot, 40, Arc::new(|_| {})).await.unwrap();
    assert_eq!(index.search(&query("late arrival")).await.unwrap().total, 1);
    let status = index.status().await.unwrap();
    assert_eq!((status.documents, status.position), (2_000, 50));
    let sold_out = index
        .search(&SearchQuery {
            in_stock: Some(false),
            ..query("")
        })
        .await
        .unwrap();
    let ids: Vec<ProductId> = sold_out.hits.iter().map(|hit| hit.product_id).collect();
    assert_eq!(ids, [docs[1].product_id]);
}
