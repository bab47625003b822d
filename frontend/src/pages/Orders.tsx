import { useEffect, useState } from 'react';
import { api, ApiError, formatMoney, type Order } from '../api';
import { Link } from '../router';

export const STATUS: Record<string, string> = {
  pending_payment: 'Awaiting payment',
  paid: 'Paid',
  fulfilled: 'Shipped',
  cancelled: 'Cancelled',
  expired: 'Expired',
  refunded: 'Refunded',
};

/** The signed-in customer's orders, newest first. */
export function OrdersPage() {
  const [orders, setOrders] = useState<Order[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api<{ items: Order[] }>('/api/v1/orders?limit=50')
      .then((answer) => setOrders(answer.items))
      .catch((caught) => setError(String(caught)));
  }, []);
  if (error) return <p className="error" role="alert">{error}</p>;
  if (!orders) return <p role="status">Loading your orders…</p>;
  return (
    <section>
      <h1>Your orders</h1>
      {orders.length === 0 ? (
        <p>
          No orders yet. <Link href="/">Visit the shop</Link>.
        </p>
      ) : (
        <ul className="orders">
          {orders.map((order) => (
            <li key={order.id}>
              <Link href={`/orders/${order.id}`}>Order of {new Date(order.created_at).toLocaleString()}</Link>{' '}
              <span className={`status ${order.status}`}>{STATUS[order.status] ?? order.status}</span>{' '}
              <span>{formatMoney(order.total)}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** Reads an order again every `every` ms while `open(order)` holds. */
export function useOrder(id: string, every = 1_000, open: (order: Order) => boolean = (o) => o.status === 'pending_payment') {
  const [order, setOrder] = useState<Order | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stale = false;
    api<Order>(`/api/v1/orders/${encodeURIComponent(id)}`)
      .then((answer) => !stale && setOrder(answer))
      .catch((caught) => !stale && setError(caught instanceof ApiError ? caught : new ApiError({ status: 0, detail: String(caught) })));
    return () => {
      stale = true;
    };
  }, [id, tick]);
  useEffect(() => {
    if (!order || !open(order)) return;
    const wait = window.setTimeout(() => setTick((n) => n + 1), every);
    return () => window.clearTimeout(wait);
  }, [order, every]);
  return { order, error, reload: () => setTick((n) => n + 1) };
}

/** One order: its lines, status and history; cancel or pay while pending. */
export function OrderPage({ id }: { id: string }) {
  const { order, error, reload } = useOrder(id, 2_000);
  const [failed, setFailed] = useState<string | null>(null);
  if (error) return <p className="error" role="alert">{error.status === 404 ? 'No such order.' : error.message}</p>;
  if (!order) return <p role="status">Loading the order…</p>;
  const cancel = async () => {
    try {
      await api(`/api/v1/orders/${order.id}/cancel`, { method: 'POST' });
      reload();
    } catch (caught) {
      setFailed(caught instanceof ApiError ? caught.message : String(caught));
    }
  };
  return (
    <section>
      <h1>Order</h1>
      <p>
        Status:{' '}
        <strong className={`status ${order.status}`} data-testid="order-status">
          {STATUS[order.status] ?? order.status}
        </strong>
      </p>
      <OrderLines order={order} />
      {order.status === 'pending_payment' && (
        <p className="actions">
          <Link href={`/pay/${order.id}`} className="button">
            Pay now
          </Link>
          <button type="button" className="secondary" onClick={cancel}>
            Cancel order
          </button>
        </p>
      )}
      {failed && <p className="error" role="alert">{failed}</p>}
      <h2>History</h2>
      <StatusHistory order={order} />
    </section>
  );
}

/** Every status an order went through, oldest first, with when and why. */
export function StatusHistory({ order }: { order: Order }) {
  return (
    <ol className="history">
      {order.history.map((change) => (
        <li key={`${change.status}-${change.at}`}>
          {STATUS[change.status] ?? change.status} — {new Date(change.at).toLocaleString()}
          {change.reason ? ` (${change.reason})` : ''}
        </li>
      ))}
    </ol>
  );
}

export function OrderLines({ order }: { order: Order }) {
  return (
    <table className="lines">
      <thead>
        <tr>
          <th scope="col">Product</th>
          <th scope="col">Quantity</th>
          <th scope="col">Total</th>
        </tr>
      </thead>
      <tbody>
        {order.items.map((line) => (
          <tr key={line.product_id}>
            <th scope="row">{line.name}</th>
            <td>{line.quantity}</td>
            <td>{formatMoney(line.line_total)}</td>
          </tr>
        ))}
      </tbody>
      <tfoot>
        <tr>
          <th scope="row" colSpan={2}>
            Total
          </th>
          <td className="total">{formatMoney(order.total)}</td>
        </tr>
      </tfoot>
    </table>
  );
}
