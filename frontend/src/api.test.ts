import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, currentSession, formatMoney, liveCartUrl, saveSession } from './api';
import { route } from './router';

const user = { id: 'u1', email: 'a@b.test', name: 'Ada', role: 'customer' };

function answer(status: number, body: unknown, type = 'application/problem+json') {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': type } });
}

describe('the API client', () => {
  beforeEach(() => localStorage.clear());
  afterEach(() => vi.unstubAllGlobals());

  it('turns a problem into an error that names its field', async () => {
    vi.stubGlobal('fetch', vi.fn(async () =>
      answer(422, { type: 'urn:pazar:problem:validation', title: 'Invalid input', status: 422, detail: 'card_number fails the Luhn check', field: 'card_number' }),
    ));
    const error = (await api('/api/v1/payments/local/confirm', { method: 'POST', body: {} }).catch((e) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.field).toBe('card_number');
    expect(error.messageFor('card_number')).toBe('fails the Luhn check');
    expect(error.messageFor('cvc')).toBeUndefined();
  });

  it('reads a failure without a JSON body by its status', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('bad gateway', { status: 502, statusText: 'Bad Gateway' })));
    const error = (await api('/api/v1/products').catch((e) => e)) as ApiError;
    expect(error.status).toBe(502);
    expect(error.message).toBe('Bad Gateway');
  });

  it('sends the token, and forgets a session the server refuses', async () => {
    saveSession({ access_token: 'tok', expires_in: 3600, user });
    const fetch = vi.fn(async () => answer(401, { status: 401, title: 'Unauthorized', detail: 'token expired' }));
    vi.stubGlobal('fetch', fetch);
    await expect(api('/api/v1/cart')).rejects.toThrow('token expired');
    const [, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect((init.headers as Record<string, string>).authorization).toBe('Bearer tok');
    expect(currentSession()).toBeNull();
  });

  it('drops a session whose token has expired, before using it', () => {
    const now = 1_000_000;
    saveSession({ access_token: 'tok', expires_in: 60, user }, now);
    expect(currentSession(now + 49_000)?.token).toBe('tok');
    // Ten seconds early: a token about to lapse is not sent.
    expect(currentSession(now + 50_001)).toBeNull();
    expect(localStorage.getItem('pazar.session')).toBeNull();
  });

  it('formats minor units by the currency', () => {
    expect(formatMoney({ amount: 1999, currency: 'EUR' }, 'en-US')).toBe('€19.99');
    expect(formatMoney({ amount: 500, currency: 'JPY' }, 'en-US')).toBe('¥500');
  });

  it('addresses the live cart on the page host', () => {
    const page = { protocol: 'https:', host: 'shop.example' } as Location;
    expect(liveCartUrl('a b', page)).toBe('wss://shop.example/api/v1/cart/live?access_token=a%20b');
  });
});

describe('the router', () => {
  it('maps every deep link to its page', () => {
    expect(route('/')).toEqual({ page: 'products' });
    expect(route('/products/p1')).toEqual({ page: 'product', id: 'p1' });
    expect(route('/cart')).toEqual({ page: 'cart' });
    expect(route('/orders/o1')).toEqual({ page: 'order', id: 'o1' });
    expect(route('/pay/o1')).toEqual({ page: 'pay', id: 'o1' });
    expect(route('/admin/supervision')).toEqual({ page: 'admin', section: 'supervision' });
    expect(route('/admin')).toEqual({ page: 'admin', section: 'products' });
    expect(route('/nowhere')).toEqual({ page: 'missing' });
  });
});

describe('the payment page', () => {
  it('says a provider reason as a sentence, without its code', async () => {
    const { readable } = await import('./pages/Pay');
    expect(readable('card_declined: your card was declined')).toBe('Your card was declined.');
    expect(readable('insufficient funds.')).toBe('Insufficient funds.');
    expect(readable(null)).toBeNull();
  });
});
