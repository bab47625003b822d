// The API client: JSON over fetch, the session (token and user) kept in
// localStorage until the token expires, and problem responses
// (application/problem+json) turned into errors that name their field.

export type Money = { amount: number; currency: string };
export type User = { id: string; email: string; name: string; role: string };
export type Stock = { on_hand: number; reserved: number; available: number };
export type Product = {
  id: string;
  name: string;
  description: string;
  sku: string;
  price: Money;
  stock: Stock;
  highlight?: string | null;
};
export type PriceBand = { from: number; to?: number | null; count: number };
export type ProductPage = {
  items: Product[];
  total: number;
  facets: { price_bands: PriceBand[]; in_stock: number; sold_out: number };
  next_cursor: string | null;
};
export type CartLine = {
  product_id: string;
  name: string | null;
  quantity: number;
  unit_price: Money | null;
  line_total: Money | null;
  available: number;
  status: 'ok' | 'insufficient_stock' | 'unavailable';
};
export type Cart = { items: CartLine[]; total: Money };
export type OrderLine = {
  product_id: string;
  name: string;
  sku: string;
  quantity: number;
  unit_price: Money;
  line_total: Money;
};
export type Order = {
  id: string;
  status: string;
  items: OrderLine[];
  total: Money;
  created_at: string;
  expires_at: string;
  history: { status: string; at: string; reason: string | null }[];
};
export type Payment = {
  order_id: string;
  provider: 'local' | 'stripe';
  status: string;
  amount: Money;
  client_secret: string;
  publishable_key: string | null;
  js_url: string | null;
  last_error: string | null;
};

/** A problem response (RFC 9457) as Pazar sends it. */
export type Problem = {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  field?: string;
  [extra: string]: unknown;
};

/** A failed request: its problem, and the field it names, if any. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  readonly field?: string;

  constructor(problem: Problem) {
    super(problem.detail || problem.title || `request failed (${problem.status})`);
    this.status = problem.status;
    this.problem = problem;
    this.field = typeof problem.field === 'string' ? problem.field : undefined;
  }

  /** The message to show at `field` (the detail without the field's name). */
  messageFor(field: string): string | undefined {
    if (this.field !== field) return undefined;
    const detail = this.problem.detail ?? this.message;
    return detail.startsWith(`${field} `) ? detail.slice(field.length + 1) : detail;
  }
}

/** Reads a response's problem, or makes one from its status. */
export async function problemOf(response: Response): Promise<Problem> {
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    try {
      const body = (await response.json()) as Problem;
      return { ...body, status: body.status ?? response.status };
    } catch {
      // fall through: a body that is not the JSON it claims
    }
  }
  return { status: response.status, title: response.statusText || 'Request failed' };
}

export type Session = { token: string; expiresAt: number; user: User };

const SESSION_KEY = 'pazar.session';
const SESSION_CHANGED = 'pazar:session';

/** The signed-in session, if its token has not expired. */
export function currentSession(now: number = Date.now()): Session | null {
  const stored = localStorage.getItem(SESSION_KEY);
  if (!stored) return null;
  try {
    const session = JSON.parse(stored) as Session;
    if (session.expiresAt > now) return session;
  } catch {
    // a damaged entry is no session
  }
  signOut();
  return null;
}

export function saveSession(
  answer: { access_token: string; expires_in: number; user: User },
  now: number = Date.now(),
): Session {
  // A little early, so a request never goes out with a token about to lapse.
  const session = {
    token: answer.access_token,
    expiresAt: now + Math.max(0, answer.expires_in - 10) * 1000,
    user: answer.user,
  };
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  window.dispatchEvent(new Event(SESSION_CHANGED));
  return session;
}

export function signOut(): void {
  if (localStorage.getItem(SESSION_KEY) !== null) {
    localStorage.removeItem(SESSION_KEY);
    window.dispatchEvent(new Event(SESSION_CHANGED));
  }
}

/** Calls `listener` whenever the session changes (sign in, out, expiry). */
export function onSessionChange(listener: () => void): () => void {
  window.addEventListener(SESSION_CHANGED, listener);
  window.addEventListener('storage', listener);
  return () => {
    window.removeEventListener(SESSION_CHANGED, listener);
    window.removeEventListener('storage', listener);
  };
}

type Options = { method?: string; body?: unknown; headers?: Record<string, string> };

/** One API call; throws `ApiError` on a problem. A 401 on a session ends it. */
export async function api<T>(path: string, options: Options = {}): Promise<T> {
  const session = currentSession();
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (session) headers.authorization = `Bearer ${session.token}`;
  const response = await fetch(path, {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (!response.ok) {
    const problem = await problemOf(response);
    if (response.status === 401 && session) signOut();
    throw new ApiError(problem);
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** `amount` minor units of `currency`, formatted for people. */
export function formatMoney(money: Money, locale?: string): string {
  const format = new Intl.NumberFormat(locale, { style: 'currency', currency: money.currency });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(money.amount / 10 ** digits);
}

/** The live cart's WebSocket address for this page. */
export function liveCartUrl(token: string, location: Location = window.location): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api/v1/cart/live?access_token=${encodeURIComponent(token)}`;
}
