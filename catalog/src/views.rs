//! `ProductViews`: the committed state of products, cached in memory for reads.
//!
//! A `GET /api/v1/products/{id}` is answered from here without touching the store.
//! The cache never shows anything that is not committed, and never keeps a stale
//! entry, because every change reaches it *after* its commit, stamped with a
//! global epoch:
//!
//! - a ProductStock actor's write completion (which runs after the batch committed)
//!   stores the new stock levels; a retirement removes the product;
//! - `Catalog::update` stores the new catalog fields after its UPDATE;
//! - a read that missed loads from the store and inserts the result only if no
//!   change to that product was recorded since the read began.
//!
//! The cache is per process: it is exact because this process is the single
//! writer of its products (see ARCHITECTURE.md).

use bytes::Bytes;
use dashmap::DashMap;
use pazar_actors::{Product, ProductId, ProductView, StockLevels};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
struct Slot {
    /// The committed view, when known.
    view: Option<ProductView>,
    /// `view` as the API writes it, made by the first read that wanted it and
    /// dropped with every change.
    rendered: Option<Bytes>,
    /// The epoch of the last change recorded for this product.
    changed_at: u64,
}

/// Committed product views by id.
#[derive(Default)]
pub struct ProductViews {
    slots: DashMap<ProductId, Slot>,
    epoch: AtomicU64,
}

/// Proof of when a store read began; needed to fill the cache after a miss.
#[derive(Clone, Copy, Debug)]
pub struct ReadTicket(u64);

impl ProductViews {
    /// The cached view, if any.
    pub fn get(&self, id: ProductId) -> Option<ProductView> {
        self.slots.get(&id).and_then(|slot| slot.view.clone())
    }

    /// The cached view as `render` writes it, if the view is cached: rendered
    /// once per committed change, then the same bytes for every read.
    pub fn rendered(
        &self,
        id: ProductId,
        render: impl FnOnce(&ProductView) -> Bytes,
    ) -> Option<Bytes> {
        if let Some(body) = self.slots.get(&id).and_then(|slot| slot.rendered.clone()) {
            return Some(body);
        }
        let mut slot = self.slots.get_mut(&id)?;
        let slot = &mut *slot;
        if slot.rendered.is_none() {
            slot.rendered = Some(render(slot.view.as_ref()?));
        }
        slot.rendered.clone()
    }

    /// Call before reading a product from the store after a miss.
    pub fn begin_read(&self) -> ReadTicket {
        ReadTicket(self.epoch.load(Ordering::SeqCst))
    }

    /// Caches what a read found, unless the product changed since the read began.
    pub fn fill(&self, ticket: ReadTicket, view: ProductView) {
        let mut slot = self.slots.entry(view.product.id).or_default();
        if slot.changed_at <= ticket.0 {
            slot.view = Some(view);
            slot.rendered = None;
        }
    }

    fn next_epoch(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A stock change of `id` was committed; `levels` are the product's levels after it.
    pub fn stock_committed(&self, id: ProductId, levels: StockLevels) {
        let epoch = self.next_epoch();
        let mut slot = self.slots.entry(id).or_default();
        slot.changed_at = epoch;
        slot.rendered = None;
        if let Some(view) = slot.view.as_mut() {
            view.stock = levels;
        }
    }

    /// The catalog fields of a product were committed; its stock is left as cached.
    pub fn product_committed(&self, product: &Product) {
        let epoch = self.next_epoch();
        let mut slot = self.slots.entry(product.id).or_default();
        slot.changed_at = epoch;
        slot.rendered = None;
        if let Some(view) = slot.view.as_mut() {
            view.product = product.clone();
        }
    }

    /// Forgets the cached view, so the next read loads the store. Always safe: use
    /// it when the store is known to be newer than the cache (an outbox event was
    /// read before the write's completion reached the cache).
    pub fn invalidate(&self, id: ProductId) {
        self.removed(id);
    }

    /// The product was deleted.
    pub fn removed(&self, id: ProductId) {
        let epoch = self.next_epoch();
        let mut slot = self.slots.entry(id).or_default();
        slot.changed_at = epoch;
        slot.view = None;
        slot.rendered = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pazar_actors::{Money, Sku};

    fn view(id: ProductId, on_hand: i64) -> ProductView {
        ProductView {
            product: Product {
                id,
                name: "Kettle".into(),
                description: String::new(),
                sku: Sku::parse("K-1").unwrap(),
                price: Money::price(100, "EUR").unwrap(),
                created_at: pazar_actors::now(),
                updated_at: pazar_actors::now(),
            },
            stock: StockLevels::new(on_hand, 0),
        }
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_cached() {
        let views = ProductViews::default();
        let id = ProductId::new();
        let ticket = views.begin_read();
        // The store read returned on_hand 10, but a change committed meanwhile.
        views.stock_committed(id, StockLevels::new(11, 0));
        views.fill(ticket, view(id, 10));
        assert!(views.get(id).is_none());
        // A read that began after the change is cached.
        let ticket = views.begin_read();
        views.fill(ticket, view(id, 11));
        assert_eq!(views.get(id).unwrap().stock.on_hand, 11);
    }

    #[test]
    fn committed_changes_update_the_cached_view() {
        let views = ProductViews::default();
        let id = ProductId::new();
        views.fill(views.begin_read(), view(id, 10));
        views.stock_committed(id, StockLevels::new(10, 3));
        assert_eq!(views.get(id).unwrap().stock, StockLevels::new(10, 3));
        let mut renamed = views.get(id).unwrap().product;
        renamed.name = "Big kettle".into();
        views.product_committed(&renamed);
        let cached = views.get(id).unwrap();
        assert_eq!(cached.product.name, "Big kettle");
        assert_eq!(cached.stock, StockLevels::new(10, 3));
        views.removed(id);
        assert!(views.get(id).is_none());
        let stale = views.begin_read();
        views.removed(id);
        views.fill(stale, view(id, 10));
        assert!(views.get(id).is_none());
    }

    #[test]
    fn a_rendered_view_is_made_once_per_change() {
        let views = ProductViews::default();
        let id = ProductId::new();
        let renders = std::cell::Cell::new(0);
        let render = |view: &ProductView| {
            renders.set(renders.get() + 1);
            Bytes::from(view.stock.on_hand.to_string())
        };
        assert_eq!(views.rendered(id, render), None, "nothing cached");
        views.fill(views.begin_read(), view(id, 10));
        assert_eq!(views.rendered(id, render).unwrap(), "10");
        assert_eq!(views.rendered(id, render).unwrap(), "10");
        assert_eq!(renders.get(), 1, "the second read takes the same bytes");
        views.stock_committed(id, StockLevels::new(9, 0));
        assert_eq!(views.rendered(id, render).unwrap(), "9");
        let mut renamed = views.get(id).unwrap().product;
        renamed.name = "Big kettle".into();
        views.product_committed(&renamed);
        views.rendered(id, render).unwrap();
        assert_eq!(renders.get(), 3, "each change is rendered anew");
        views.removed(id);
        assert_eq!(views.rendered(id, render), None);
    }
}
