import { useEffect, useId, useState } from 'react';
import { api, ApiError, formatMoney, type ProductPage, type Session } from '../api';
import { Link, navigate } from '../router';
import { AddToCart } from './AddToCart';

const SORTS: [string, string][] = [
  ['relevance', 'Best match'],
  ['newest', 'Newest'],
  ['price_asc', 'Price: low to high'],
  ['price_desc', 'Price: high to low'],
  ['availability', 'Most in stock'],
];

/** The query string of a listing, without empty values. */
function listing(query: URLSearchParams, changes: Record<string, string | null>): string {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === '') next.delete(key);
    else next.set(key, value);
  }
  const text = next.toString();
  return text ? `/?${text}` : '/';
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** HTML-escaped text back to text (the escapes the engines write; nothing parsed). */
export function decode(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (entity, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : entity;
    }
    return NAMED[name.toLowerCase()] ?? entity;
  });
}

/** Highlighted text from the index: only its <b> tags are kept as markup. */
export function Highlight({ html }: { html: string }) {
  const parts = html.split(/(<b>.*?<\/b>)/g);
  return (
    <>
      {parts.map((part, i) =>
        part.startsWith('<b>') ? <mark key={i}>{decode(part.slice(3, -4))}</mark> : <span key={i}>{decode(part)}</span>,
      )}
    </>
  );
}

/** The product list: search (typos tolerated), filters, facets and paging. */
export function ProductsPage({ query, session }: { query: URLSearchParams; session: Session | null }) {
  const [page, setPage] = useState<ProductPage | null>(null);
  const [more, setMore] = useState<ProductPage['items']>([]);
  const [error, setError] = useState<string | null>(null);
  const [text, setText] = useState(query.get('q') ?? '');
  const [suggestions, setSuggestions] = useState<string[]>([]);
  const listId = useId();
  const key = query.toString();

  useEffect(() => {
    let stale = false;
    setError(null);
    api<ProductPage>(`/api/v1/products?${new URLSearchParams({ limit: '24', ...Object.fromEntries(query) })}`)
      .then((answer) => {
        if (!stale) {
          setPage(answer);
          setMore([]);
        }
      })
      .catch((caught) => !stale && setError(caught instanceof ApiError ? caught.message : String(caught)));
    return () => {
      stale = true;
    };
  }, [key]);

  // Typing searches after a pause, and suggests names meanwhile.
  useEffect(() => {
    if (text === (query.get('q') ?? '')) return;
    const wait = window.setTimeout(() => navigate(listing(query, { q: text.trim() || null }), true), 300);
    if (text.trim().length >= 2) {
      api<{ suggestions: string[] }>(`/api/v1/products/suggest?q=${encodeURIComponent(text.trim())}`)
        .then((answer) => setSuggestions(answer.suggestions))
        .catch(() => setSuggestions([]));
    }
    return () => window.clearTimeout(wait);
  }, [text]);

  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const loadMore = async () => {
    const cursor = more.length ? nextCursor : page?.next_cursor;
    if (!cursor) return;
    const answer = await api<ProductPage>(
      `/api/v1/products?${new URLSearchParams({ limit: '24', ...Object.fromEntries(query), cursor })}`,
    );
    setMore((items) => [...items, ...answer.items]);
    setNextCursor(answer.next_cursor);
  };
  const hasMore = more.length ? nextCursor !== null : Boolean(page?.next_cursor);
  const items = [...(page?.items ?? []), ...more];
  const inStock = query.get('in_stock');
  const band = query.get('min_price');

  return (
    <section>
      <h1>Shop</h1>
      <form
        role="search"
        className="search"
        onSubmit={(event) => {
          event.preventDefault();
          navigate(listing(query, { q: text.trim() || null }));
        }}
      >
        <label htmlFor="q">Search products</label>
        <input id="q" type="search" list={listId} value={text} onChange={(event) => setText(event.target.value)} autoComplete="off" />
        <datalist id={listId}>
          {suggestions.map((name) => (
            <option key={name} value={name} />
          ))}
        </datalist>
        <label htmlFor="sort">Sort by</label>
        <select id="sort" value={query.get('sort') ?? 'relevance'} onChange={(event) => navigate(listing(query, { sort: event.target.value }))}>
          {SORTS.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </form>
      <div className="listing">
        {page && (
          <aside aria-label="Filters">
            <h2>Availability</h2>
            <ul className="facets">
              <li>
                <button type="button" className="link" aria-pressed={inStock === 'true'} onClick={() => navigate(listing(query, { in_stock: inStock === 'true' ? null : 'true' }))}>
                  In stock ({page.facets.in_stock})
                </button>
              </li>
              <li>
                <button type="button" className="link" aria-pressed={inStock === 'false'} onClick={() => navigate(listing(query, { in_stock: inStock === 'false' ? null : 'false' }))}>
                  Sold out ({page.facets.sold_out})
                </button>
              </li>
            </ul>
            <h2>Price</h2>
            <ul className="facets">
              {page.facets.price_bands
                .filter((b) => b.count > 0 || band === String(b.from))
                .map((b) => {
                  const chosen = band === String(b.from);
                  const currency = items[0]?.price.currency ?? 'EUR';
                  const label = b.to == null
                    ? `${formatMoney({ amount: b.from, currency })} and up`
                    : `${formatMoney({ amount: b.from, currency })} – ${formatMoney({ amount: b.to, currency })}`;
                  return (
                    <li key={b.from}>
                      <button
                        type="button"
                        className="link"
                        aria-pressed={chosen}
                        onClick={() =>
                          navigate(listing(query, chosen ? { min_price: null, max_price: null } : { min_price: String(b.from), max_price: b.to == null ? null : String(b.to - 1) }))
                        }
                      >
                        {label} ({b.count})
                      </button>
                    </li>
                  );
                })}
            </ul>
          </aside>
        )}
        <div className="results">
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          {page && (
            <p role="status">
              {page.total === 1 ? '1 product' : `${page.total} products`}
              {query.get('q') ? ` for “${query.get('q')}”` : ''}
            </p>
          )}
          {page && page.total === 0 && !query.toString() && (
            <p className="empty">
              This shop has no products yet. An administrator adds them with <code>POST /api/v1/products</code>, or
              fills a demo catalog with <code>pazar seed --products 100</code>.
            </p>
          )}
          <ul className="grid">
            {items.map((product) => (
              <li key={product.id} className="card">
                <h3>
                  <Link href={`/products/${product.id}`}>{product.name}</Link>
                </h3>
                {product.highlight ? (
                  <p className="snippet">
                    <Highlight html={product.highlight} />
                  </p>
                ) : (
                  <p className="snippet">{product.description}</p>
                )}
                <p className="price">{formatMoney(product.price)}</p>
                <p className={product.stock.available > 0 ? 'stock' : 'stock out'}>
                  {product.stock.available > 0 ? `${product.stock.available} in stock` : 'Sold out'}
                </p>
                <AddToCart product={product} session={session} />
              </li>
            ))}
          </ul>
          {hasMore && (
            <button type="button" className="secondary" onClick={loadMore}>
              Show more
            </button>
          )}
        </div>
      </div>
    </section>
  );
}
