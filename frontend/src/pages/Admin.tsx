import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiError, formatMoney, type Order, type Product, type ProductPage, type Session } from '../api';
import { Link } from '../router';
import { Field } from './Field';
import { STATUS, StatusHistory } from './Orders';
import { SupervisionTree } from './Supervision';

const SECTIONS: [string, string][] = [
  ['products', 'Products'],
  ['orders', 'Orders'],
  ['mails', 'Failed mails'],
  ['dead-letters', 'Dead letters'],
  ['search', 'Search'],
  ['supervision', 'Supervision'],
];

/** Loads `path` again whenever `reload` changes; the error, if any. */
function useData<T>(path: string, reload: number): { data: T | null; error: string | null } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stale = false;
    api<T>(path)
      .then((answer) => {
        if (!stale) {
          setData(answer);
          setError(null);
        }
      })
      .catch((caught) => !stale && setError(caught instanceof ApiError ? caught.message : String(caught)));
    return () => {
      stale = true;
    };
  }, [path, reload]);
  return { data, error };
}

/** Runs an admin action, then reloads; says what went wrong. */
function useAction(): [(run: () => Promise<unknown>) => Promise<void>, number, string | null] {
  const [reload, setReload] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const act = async (run: () => Promise<unknown>) => {
    setError(null);
    try {
      await run();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : String(caught));
    }
    setReload((n) => n + 1);
  };
  return [act, reload, error];
}

function Failure({ text }: { text: string | null }) {
  return text ? (
    <p className="error" role="alert">
      {text}
    </p>
  ) : null;
}

/** The back office, for administrators. */
export function AdminPage({ section, session }: { section: string; session: Session }) {
  if (session.user.role !== 'admin') {
    return (
      <section>
        <h1>Administrators only</h1>
        <p>
          This part of the shop is for its administrators. <Link href="/">Back to the shop</Link>
        </p>
      </section>
    );
  }
  let body: ReactNode;
  switch (section) {
    case 'products':
      body = <Products />;
      break;
    case 'orders':
      body = <Orders />;
      break;
    case 'mails':
      body = <Mails />;
      break;
    case 'dead-letters':
      body = <DeadLetters />;
      break;
    case 'search':
      body = <Search />;
      break;
    case 'supervision':
      body = <SupervisionTree />;
      break;
    default:
      body = <p>No such section.</p>;
  }
  return (
    <section>
      <h1>Admin</h1>
      <nav aria-label="Admin sections" className="tabs">
        {SECTIONS.map(([key, label]) => (
          <Link key={key} href={`/admin/${key}`} aria-current={key === section ? 'page' : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      {body}
    </section>
  );
}

function Products() {
  const [act, reload, failed] = useAction();
  const { data, error } = useData<ProductPage>('/api/v1/products?sort=newest&limit=100', reload);
  const [created, setCreated] = useState<ApiError | null>(null);
  const create = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const fields = new FormData(form);
    setCreated(null);
    try {
      await api('/api/v1/products', {
        method: 'POST',
        body: {
          name: fields.get('name'),
          description: fields.get('description'),
          sku: fields.get('sku'),
          price: { amount: Math.round(Number(fields.get('price')) * 100), currency: String(fields.get('currency') || 'EUR') },
          stock: Number(fields.get('stock') || 0),
        },
      });
      form.reset();
      await act(async () => {});
    } catch (caught) {
      setCreated(caught instanceof ApiError ? caught : new ApiError({ status: 0, detail: String(caught) }));
    }
  };
  return (
    <>
      <h2>Products</h2>
      <Failure text={error ?? failed} />
      <table className="lines">
        <thead>
          <tr>
            <th scope="col">Product</th>
            <th scope="col">Price</th>
            <th scope="col">Stock</th>
            <th scope="col">Adjust stock</th>
            <th scope="col">Change</th>
          </tr>
        </thead>
        <tbody>
          {data?.items.map((product) => (
            <ProductRow key={product.id} product={product} act={act} />
          ))}
        </tbody>
      </table>
      <h2>New product</h2>
      <form onSubmit={create} noValidate className="grid-form">
        <Field id="name" label="Name" required error={created?.messageFor('name')} />
        <Field id="sku" label="SKU" required error={created?.messageFor('sku')} />
        <Field id="description" label="Description" error={created?.messageFor('description')} />
        <Field id="price" label="Price (major units)" inputMode="decimal" required error={created?.messageFor('price.amount') ?? created?.messageFor('amount')} />
        <Field id="currency" label="Currency" defaultValue="EUR" error={created?.messageFor('price.currency') ?? created?.messageFor('currency')} />
        <Field id="stock" label="Stock" inputMode="numeric" defaultValue="0" error={created?.messageFor('stock')} />
        <Failure text={created && !created.field ? created.message : null} />
        <button type="submit">Create product</button>
      </form>
    </>
  );
}

function ProductRow({ product, act }: { product: Product; act: (run: () => Promise<unknown>) => Promise<void> }) {
  const [delta, setDelta] = useState('');
  const [editing, setEditing] = useState(false);
  const [refused, setRefused] = useState<ApiError | null>(null);
  const save = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const fields = new FormData(event.currentTarget);
    setRefused(null);
    try {
      await api(`/api/v1/products/${product.id}`, {
        method: 'PATCH',
        body: {
          name: fields.get('name'),
          description: fields.get('description'),
          price: { amount: Math.round(Number(fields.get('price')) * 100) },
        },
      });
      setEditing(false);
      await act(async () => {});
    } catch (caught) {
      setRefused(caught instanceof ApiError ? caught : new ApiError({ status: 0, detail: String(caught) }));
    }
  };
  if (editing) {
    return (
      <tr>
        <td colSpan={5}>
          <form onSubmit={save} noValidate aria-label={`Edit ${product.name}`} className="grid-form">
            <Field id={`name-${product.id}`} name="name" label="Name" defaultValue={product.name} error={refused?.messageFor('name')} />
            <Field id={`description-${product.id}`} name="description" label="Description" defaultValue={product.description} error={refused?.messageFor('description')} />
            <Field
              id={`price-${product.id}`}
              name="price"
              label={`Price (${product.price.currency})`}
              inputMode="decimal"
              defaultValue={String(product.price.amount / 100)}
              error={refused?.messageFor('price.amount') ?? refused?.messageFor('amount')}
            />
            <Failure text={refused && !refused.field ? refused.message : null} />
            <p className="actions">
              <button type="submit">Save</button>
              <button type="button" className="secondary" onClick={() => setEditing(false)}>
                Cancel
              </button>
            </p>
          </form>
        </td>
      </tr>
    );
  }
  const adjust = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    void act(() =>
      api(`/api/v1/products/${product.id}/stock-adjustments`, {
        method: 'POST',
        body: { delta: Number(delta), reason: 'admin page' },
      }).then(() => setDelta('')),
    );
  };
  return (
    <tr>
      <th scope="row">
        <Link href={`/products/${product.id}`}>{product.name}</Link>
        <div className="sku">{product.sku}</div>
      </th>
      <td>{formatMoney(product.price)}</td>
      <td>
        {product.stock.on_hand} on hand, {product.stock.reserved} held
      </td>
      <td>
        <form onSubmit={adjust} className="inline-form">
          <label className="visually-hidden" htmlFor={`delta-${product.id}`}>
            Stock change for {product.name}
          </label>
          <input id={`delta-${product.id}`} className="qty" inputMode="numeric" placeholder="+5 / -2" value={delta} onChange={(event) => setDelta(event.target.value)} />
          <button type="submit" className="secondary">
            Apply<span className="visually-hidden"> stock change to {product.name}</span>
          </button>
        </form>
      </td>
      <td>
        <button type="button" className="link" onClick={() => setEditing(true)}>
          Edit<span className="visually-hidden"> {product.name}</span>
        </button>{' '}
        <button type="button" className="link" onClick={() => act(() => api(`/api/v1/products/${product.id}`, { method: 'DELETE' }))}>
          Delete<span className="visually-hidden"> {product.name}</span>
        </button>
      </td>
    </tr>
  );
}

function Orders() {
  const [status, setStatus] = useState('');
  const [act, reload, failed] = useAction();
  const { data, error } = useData<{ items: (Order & { user_id: string })[]; total: number }>(
    `/api/v1/admin/orders?limit=50${status ? `&status=${status}` : ''}`,
    reload,
  );
  return (
    <>
      <h2>Orders</h2>
      <div className="field inline">
        <label htmlFor="status">Status</label>
        <select id="status" value={status} onChange={(event) => setStatus(event.target.value)}>
          <option value="">All</option>
          {Object.entries(STATUS).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <Failure text={error ?? failed} />
      <ul className="orders admin-orders">
        {data?.items.map((order) => (
          <li key={order.id}>
            <details>
              <summary>
                {new Date(order.created_at).toLocaleString()} — <span className={`status ${order.status}`}>{STATUS[order.status] ?? order.status}</span> —{' '}
                {formatMoney(order.total)}
              </summary>
              <StatusHistory order={order} />
              <p className="actions">
                {order.status === 'paid' && (
                  <>
                    <button type="button" onClick={() => act(() => api(`/api/v1/admin/orders/${order.id}/fulfil`, { method: 'POST' }))}>
                      Mark shipped
                    </button>
                    <button type="button" className="secondary" onClick={() => act(() => api(`/api/v1/admin/orders/${order.id}/refund`, { method: 'POST' }))}>
                      Refund
                    </button>
                  </>
                )}
              </p>
            </details>
          </li>
        ))}
      </ul>
    </>
  );
}

type Mail = { id: string; kind: string; recipient: string; subject: string; attempts: number; last_error: string | null; created_at: string };

function Mails() {
  const [act, reload, failed] = useAction();
  const { data, error } = useData<{ items: Mail[] }>('/api/v1/admin/emails?status=failed&limit=50', reload);
  return (
    <>
      <h2>Failed mails</h2>
      <Failure text={error ?? failed} />
      {data && data.items.length === 0 && <p>No mail has failed.</p>}
      <ul className="orders">
        {data?.items.map((mail) => (
          <li key={mail.id}>
            <strong>{mail.subject}</strong> to {mail.recipient} — {mail.attempts} attempts — {mail.last_error}{' '}
            <button type="button" className="secondary" onClick={() => act(() => api(`/api/v1/admin/emails/${mail.id}/retry`, { method: 'POST' }))}>
              Retry<span className="visually-hidden"> the mail to {mail.recipient}</span>
            </button>
          </li>
        ))}
      </ul>
    </>
  );
}

type DeadLetter = { id: string; group: string; subscriber: string | null; topic: string; partition: number; offset: number; error: string; attempts: number; replayed_at: string | null };

function DeadLetters() {
  const [act, reload, failed] = useAction();
  const { data, error } = useData<{ items: DeadLetter[] }>('/api/v1/admin/dead-letters?limit=50', reload);
  return (
    <>
      <h2>Dead letters</h2>
      <p>Messages a Kafka consumer group could not deliver (only with Kafka).</p>
      <Failure text={error ?? failed} />
      {data && data.items.length === 0 && <p>No dead letters.</p>}
      <ul className="orders">
        {data?.items.map((letter) => (
          <li key={letter.id}>
            <code>
              {letter.topic}[{letter.partition}]@{letter.offset}
            </code>{' '}
            {letter.subscriber ?? letter.group}: {letter.error}{' '}
            {letter.replayed_at ? (
              <span>replayed {new Date(letter.replayed_at).toLocaleString()}</span>
            ) : (
              <button type="button" className="secondary" onClick={() => act(() => api(`/api/v1/admin/dead-letters/${letter.id}/replay`, { method: 'POST' }))}>
                Replay<span className="visually-hidden"> message at offset {letter.offset}</span>
              </button>
            )}
          </li>
        ))}
      </ul>
    </>
  );
}

type SearchStatus = {
  backend: string;
  documents: number;
  last_applied_position: number;
  lag_events: number | null;
  lag_seconds: number | null;
  last_reindex: string | null;
  reindexing: boolean;
  reindex_done: number | null;
  reindex_total: number | null;
  last_reindex_error: string | null;
};

function Search() {
  const [act, reload, failed] = useAction();
  const [tick, setTick] = useState(0);
  const { data, error } = useData<SearchStatus>('/api/v1/admin/search', reload + tick);
  useEffect(() => {
    const every = window.setInterval(() => setTick((n) => n + 1), data?.reindexing ? 500 : 5_000);
    return () => window.clearInterval(every);
  }, [data?.reindexing]);
  return (
    <>
      <h2>Search index</h2>
      <Failure text={error ?? failed ?? data?.last_reindex_error ?? null} />
      {data && (
        <dl className="facts">
          <dt>Engine</dt>
          <dd>{data.backend}</dd>
          <dt>Products indexed</dt>
          <dd>{data.documents}</dd>
          <dt>Last event applied</dt>
          <dd>{data.last_applied_position}</dd>
          <dt>Behind by</dt>
          <dd>{data.lag_events === null ? 'see the consumer lag' : `${data.lag_events} events, ${data.lag_seconds?.toFixed(1)} s`}</dd>
          <dt>Last rebuilt</dt>
          <dd>{data.last_reindex ? new Date(data.last_reindex).toLocaleString() : 'never'}</dd>
        </dl>
      )}
      {data?.reindexing ? (
        <p role="status">
          Rebuilding: <progress max={data.reindex_total || 1} value={data.reindex_done ?? 0} /> {data.reindex_done ?? 0} of {data.reindex_total ?? '…'}
        </p>
      ) : (
        <button type="button" onClick={() => act(() => api('/api/v1/admin/search/reindex', { method: 'POST' }))}>
          Rebuild the index
        </button>
      )}
    </>
  );
}
