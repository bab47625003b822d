import { useState } from 'react';
import { api, ApiError, type Product, type Session } from '../api';
import { Link } from '../router';

/** Adds `quantity` of a product to the signed-in visitor's cart, saying how it went. */
export function AddToCart({ product, session, quantity = 1 }: { product: Product; session: Session | null; quantity?: number }) {
  const [said, setSaid] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  if (!session) {
    return (
      <Link href={`/signin?next=${encodeURIComponent(`/products/${product.id}`)}`} className="button secondary">
        Sign in to buy
      </Link>
    );
  }
  const soldOut = product.stock.available <= 0;
  const add = async () => {
    setBusy(true);
    try {
      await api('/api/v1/cart/items', { method: 'POST', body: { product_id: product.id, quantity } });
      setSaid({ ok: true, text: 'Added to your cart' });
    } catch (caught) {
      setSaid({ ok: false, text: caught instanceof ApiError ? caught.message : 'Could not add it' });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="add">
      <button type="button" onClick={add} disabled={busy || soldOut}>
        {soldOut ? 'Sold out' : 'Add to cart'}
        <span className="visually-hidden"> {product.name}</span>
      </button>
      <span role="status" className={said?.ok === false ? 'error' : 'ok'}>
        {said?.text}
      </span>
    </div>
  );
}
