import { lazy, Suspense, useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, formatMoney, type Payment } from '../api';
import { Link } from '../router';
import { Field } from './Field';
import { OrderLines, STATUS, useOrder } from './Orders';

/** Minutes and seconds until `deadline`, ticking. */
function useCountdown(deadline: string | undefined): string | null {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const every = window.setInterval(() => setNow(Date.now()), 1_000);
    return () => window.clearInterval(every);
  }, []);
  if (!deadline) return null;
  const left = Math.max(0, Math.floor((Date.parse(deadline) - now) / 1_000));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
}

const StripePay = lazy(() => import('./StripePay'));

type Outcome = { status: string; last_error: string | null };

/** A provider's reason without its code, as a sentence. */
export function readable(reason: string | null): string | null {
  if (!reason) return null;
  const text = reason.replace(/^[a-z_]+: /, '');
  return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? '' : '.');
}

/** The payment page (`/pay/{order_id}`, the link in the order-received mail):
 *  the order's lines, total and time left, and the card form. The order's
 *  status is read again until it is paid. */
export function PayPage({ orderId }: { orderId: string }) {
  const { order, error } = useOrder(orderId, 1_000, (o) => o.status === 'pending_payment');
  const [payment, setPayment] = useState<Payment | null>(null);
  const [failed, setFailed] = useState<ApiError | null>(null);
  const [declined, setDeclined] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);
  const countdown = useCountdown(order?.expires_at);
  // Back from a Stripe redirect (3-D Secure, a bank's page): the intent's status,
  // read with Stripe.js, or else the one Stripe put in the URL.
  const back = new URLSearchParams(window.location.search);
  const returnedSecret = back.get('payment_intent_client_secret');
  const [returned, setReturned] = useState(back.get('redirect_status'));
  useEffect(() => {
    if (payment?.provider !== 'stripe' || !returnedSecret) return;
    void import('./StripePay')
      .then((stripe) => stripe.intentStatus(payment, returnedSecret))
      .then((status) => {
        if (status) setReturned(status === 'succeeded' || status === 'processing' ? status : 'failed');
      });
  }, [payment, returnedSecret]);
  useEffect(() => {
    if (returned === 'succeeded' || returned === 'processing') setSent(true);
  }, [returned]);

  useEffect(() => {
    if (order?.status !== 'pending_payment' || payment) return;
    api<Payment>(`/api/v1/orders/${encodeURIComponent(orderId)}/payment`, { method: 'POST' })
      .then(setPayment)
      .catch((caught) => setFailed(caught instanceof ApiError ? caught : null));
  }, [order?.status, orderId, payment]);

  if (error) return <p className="error" role="alert">{error.status === 404 ? 'No such order.' : error.message}</p>;
  if (!order) return <p role="status">Loading the order…</p>;

  const pay = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!payment) return;
    const form = new FormData(event.currentTarget);
    const [month, year] = String(form.get('expiry') ?? '').split('/').map((part) => part.trim());
    setBusy(true);
    setFailed(null);
    setDeclined(null);
    try {
      const outcome = await api<Outcome>('/api/v1/payments/local/confirm', {
        method: 'POST',
        body: {
          client_secret: payment.client_secret,
          card_number: String(form.get('card_number') ?? ''),
          exp_month: Number(month) || 0,
          exp_year: Number(year) || 0,
          cvc: String(form.get('cvc') ?? ''),
        },
      });
      // "card_declined: your card was declined" → "Your card was declined."
      if (outcome.status === 'failed') setDeclined(readable(outcome.last_error) ?? 'The card was declined.');
      else setSent(true);
    } catch (caught) {
      setFailed(caught instanceof ApiError ? caught : new ApiError({ status: 0, detail: String(caught) }));
    } finally {
      setBusy(false);
    }
  };

  const paid = order.status !== 'pending_payment';
  const expiryError = failed?.messageFor('exp_month') ?? failed?.messageFor('exp_year');
  const general = failed && !failed.field ? failed.message : undefined;
  return (
    <section className="narrow">
      <h1>Payment</h1>
      <OrderLines order={order} />
      <p aria-live="polite" data-testid="pay-status">
        {order.status === 'paid' || order.status === 'fulfilled' ? (
          <strong className="ok">
            Paid — thank you! <Link href={`/orders/${order.id}`}>See your order</Link>
          </strong>
        ) : paid ? (
          <strong className="error">This order is {STATUS[order.status]?.toLowerCase() ?? order.status}; it can no longer be paid.</strong>
        ) : sent ? (
          'Payment accepted; confirming your order…'
        ) : (
          <>Time left to pay: {countdown}</>
        )}
      </p>
      {!paid && !sent && payment?.provider === 'local' && (
        <form onSubmit={pay} noValidate aria-label="Card">
          <Field
            id="card_number"
            label="Card number"
            inputMode="numeric"
            autoComplete="cc-number"
            placeholder="4242 4242 4242 4242"
            error={declined ?? failed?.messageFor('card_number')}
          />
          <div className="row">
            <Field id="expiry" label="Expiry (MM/YY)" autoComplete="cc-exp" placeholder="12/34" error={expiryError} />
            <Field id="cvc" label="CVC" inputMode="numeric" autoComplete="cc-csc" placeholder="123" error={failed?.messageFor('cvc')} />
          </div>
          {general && (
            <p className="error" role="alert">
              {general}
            </p>
          )}
          <button type="submit" disabled={busy}>
            Pay {formatMoney(payment.amount)}
          </button>
        </form>
      )}
      {!paid && !sent && payment?.provider === 'stripe' && (
        <Suspense fallback={<p role="status">Loading the card form…</p>}>
          <StripePay payment={payment} orderId={order.id} onSent={() => setSent(true)} />
        </Suspense>
      )}
      {returned === 'failed' && !paid && (
        <p className="error" role="alert">
          The payment was not completed; try again or use another card.
        </p>
      )}
    </section>
  );
}
