-- A refund's return of sold units is an adjustment keyed by its order: at most one
-- per product and order, so a retried refund cannot put the units back twice.
alter table stock_adjustments add column order_id blob;
create unique index stock_adjustments_return on stock_adjustments (product_id, order_id);
