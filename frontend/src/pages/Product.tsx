import { useEffect, useState } from 'react';
import { api, ApiError, formatMoney, type Product, type Session } from '../api';
import { Link } from '../router';
import { AddToCart } from './AddToCart';

/** One product, with its availability now. */
export function ProductPage({ id, session }: { id: string; session: Session | null }) {
  const [product, setProduct] = useState<Product | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [quantity, setQuantity] = useState(1);
  useEffect(() => {
    api<Product>(`/api/v1/products/${encodeURIComponent(id)}`)
      .then(setProduct)
      .catch((caught) => setError(caught instanceof ApiError && caught.status === 404 ? 'This product does not exist (any more).' : String(caught)));
  }, [id]);
  if (error) {
    return (
      <section>
        <h1>Product not found</h1>
        <p className="error" role="alert">
          {error}
        </p>
        <Link href="/">Back to the shop</Link>
      </section>
    );
  }
  if (!product) return <p role="status">Loading…</p>;
  const available = product.stock.available;
  return (
    <section className="product">
      <h1>{product.name}</h1>
      <p className="sku">SKU {product.sku}</p>
      <p className="price">{formatMoney(product.price)}</p>
      <p className={available > 0 ? 'stock' : 'stock out'}>{available > 0 ? `${available} available` : 'Sold out'}</p>
      <p className="description">{product.description}</p>
      {available > 0 && session && (
        <div className="field inline">
          <label htmlFor="quantity">Quantity</label>
          <input id="quantity" type="number" min={1} max={available} value={quantity} onChange={(event) => setQuantity(Math.max(1, Number(event.target.value) || 1))} />
        </div>
      )}
      <AddToCart product={product} session={session} quantity={quantity} />
    </section>
  );
}
