//! Product search adapters of the catalog's search port
//! (`pazar_catalog::search::SearchIndex`).
//!
//! - [`tantivy_index`]: the embedded default, a tantivy index under
//!   `$PAZAR_DATA_DIR/search/`;
//! - [`elastic`]: Elasticsearch (`ELASTICSEARCH_URL`), for production.

pub mod elastic;
pub mod tantivy_index;

pub use elastic::{ElasticIndex, ElasticSettings};
pub use tantivy_index::TantivyIndex;
