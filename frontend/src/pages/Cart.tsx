import { useEffect, useState } from 'react';
import { api, ApiError, formatMoney, liveCartUrl, type Cart, type Order, type Session } from '../api';
import { Link, navigate } from '../router';

type Unavailable = { product_id: string; requested: number; available: number };

/** The cart, kept live over the cart WebSocket: a change in another tab, or a
 *  price or stock change in the catalog, shows here at once. */
export function CartPage({ session }: { session: Session }) {
  const [cart, setCart] = useState<Cart | null>(null);
  const [live, setLive] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [prices, setPrices] = useState<Record<string, number>>({});

  useEffect(() => {
    let socket: WebSocket | null = null;
    let closed = false;
    let retry = 0;
    const connect = () => {
      socket = new WebSocket(liveCartUrl(session.token));
      socket.onopen = () => {
        retry = 0;
        setLive(true);
      };
      socket.onmessage = (message) => setCart(JSON.parse(message.data as string) as Cart);
      socket.onclose = () => {
        setLive(false);
        if (!closed) window.setTimeout(connect, Math.min(5_000, 250 * 2 ** retry++));
      };
    };
    connect();
    return () => {
      closed = true;
      socket?.close();
    };
  }, [session.token]);

  // A line whose price changed since this page first saw it is flagged.
  useEffect(() => {
    if (!cart) return;
    setPrices((seen) => {
      const next = { ...seen };
      for (const line of cart.items) {
        if (line.unit_price && next[line.product_id] === undefined) next[line.product_id] = line.unit_price.amount;
      }
      return next;
    });
  }, [cart]);

  const change = async (productId: string, quantity: number) => {
    setError(null);
    try {
      if (quantity <= 0) await api(`/api/v1/cart/items/${productId}`, { method: 'DELETE' });
      else await api(`/api/v1/cart/items/${productId}`, { method: 'PATCH', body: { quantity } });
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : String(caught));
    }
  };

  const checkout = async () => {
    setBusy(true);
    setError(null);
    try {
      const order = await api<Order>('/api/v1/orders', { method: 'POST', headers: { 'idempotency-key': crypto.randomUUID() } });
      navigate(`/pay/${order.id}`);
    } catch (caught) {
      if (caught instanceof ApiError) {
        const unavailable = caught.problem.unavailable as Unavailable[] | undefined;
        setError(
          unavailable?.length
            ? `Not enough stock: ${unavailable.map((u) => `${cart?.items.find((l) => l.product_id === u.product_id)?.name ?? 'a product'} has ${u.available} left`).join(', ')}.`
            : caught.message,
        );
      } else setError(String(caught));
    } finally {
      setBusy(false);
    }
  };

  if (!cart) return <p role="status">Loading your cart…</p>;
  const blocked = cart.items.some((line) => line.status !== 'ok');
  return (
    <section>
      <h1>Your cart</h1>
      <p className="live" role="status">
        {live ? 'Live: changes from your other tabs show here.' : 'Reconnecting…'}
      </p>
      {cart.items.length === 0 ? (
        <p>
          Your cart is empty. <Link href="/">Find something in the shop</Link>.
        </p>
      ) : (
        <>
          <table className="lines">
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col">Quantity</th>
                <th scope="col">Price</th>
                <th scope="col">Total</th>
              </tr>
            </thead>
            <tbody>
              {cart.items.map((line) => {
                const repriced = line.unit_price && prices[line.product_id] !== undefined && prices[line.product_id] !== line.unit_price.amount;
                return (
                  <tr key={line.product_id} data-product={line.product_id}>
                    <th scope="row">
                      {line.name ? <Link href={`/products/${line.product_id}`}>{line.name}</Link> : 'Removed product'}
                      {line.status === 'insufficient_stock' && (
                        <p className="flag" role="alert">
                          Only {line.available} left
                        </p>
                      )}
                      {line.status === 'unavailable' && (
                        <p className="flag" role="alert">
                          No longer sold
                        </p>
                      )}
                      {repriced && (
                        <p className="flag" role="alert">
                          Price changed
                        </p>
                      )}
                    </th>
                    <td>
                      <label className="visually-hidden" htmlFor={`qty-${line.product_id}`}>
                        Quantity of {line.name ?? 'removed product'}
                      </label>
                      <input
                        id={`qty-${line.product_id}`}
                        className="qty"
                        type="number"
                        min={0}
                        value={line.quantity}
                        onChange={(event) => change(line.product_id, Number(event.target.value))}
                      />
                      <button type="button" className="link" onClick={() => change(line.product_id, 0)}>
                        Remove
                      </button>
                    </td>
                    <td>{line.unit_price ? formatMoney(line.unit_price) : '—'}</td>
                    <td>{line.line_total ? formatMoney(line.line_total) : '—'}</td>
                  </tr>
                );
              })}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row" colSpan={3}>
                  Total
                </th>
                <td className="total">{formatMoney(cart.total)}</td>
              </tr>
            </tfoot>
          </table>
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <button type="button" onClick={checkout} disabled={busy || blocked}>
            Check out
          </button>
        </>
      )}
    </section>
  );
}
