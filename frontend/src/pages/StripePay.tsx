// The Stripe payment form (the `stripe` provider): Stripe.js from the shop's
// STRIPE_JS_URL, Elements with the payment's client secret, the Payment
// Element, and confirmPayment. The card goes from the Payment Element to Stripe;
// it never touches Pazar's server. Loaded on demand: the shop's other pages do
// not ship it.
import { useMemo, useState, type FormEvent } from 'react';
import { Elements, PaymentElement, useElements, useStripe } from '@stripe/react-stripe-js';
import type { Stripe } from '@stripe/stripe-js';
import { loadStripe } from '@stripe/stripe-js/pure';
import { formatMoney, type Payment } from '../api';

let loading: Promise<Stripe | null> | null = null;

/** Stripe.js from `url` (once per page), then a Stripe instance for `key`. */
function stripeFrom(url: string, key: string): Promise<Stripe | null> {
  loading ??= new Promise<void>((resolve, reject) => {
    if (window.Stripe) {
      resolve();
      return;
    }
    const script = document.createElement('script');
    script.src = url;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error(`Stripe.js could not be loaded from ${url}`));
    document.head.appendChild(script);
  }).then(() => loadStripe(key));
  return loading;
}

type Props = { payment: Payment; orderId: string; onSent: () => void };

/** Back from a redirect: the intent's status as Stripe.js reads it with the
 *  client secret Stripe put in the URL; null when it cannot be read. */
export async function intentStatus(payment: Payment, clientSecret: string): Promise<string | null> {
  if (!payment.js_url || !payment.publishable_key) return null;
  try {
    const stripe = await stripeFrom(payment.js_url, payment.publishable_key);
    const result = await stripe?.retrievePaymentIntent(clientSecret);
    return result?.paymentIntent?.status ?? null;
  } catch {
    return null;
  }
}

/** Where Stripe sends the customer back after a redirect (3-D Secure, bank pages). */
export function returnUrl(orderId: string, origin: string = window.location.origin): string {
  return `${origin}/pay/${encodeURIComponent(orderId)}`;
}

export default function StripePay({ payment, orderId, onSent }: Props) {
  const [failed, setFailed] = useState<string | null>(null);
  const stripe = useMemo(() => {
    if (!payment.js_url || !payment.publishable_key) return null;
    return stripeFrom(payment.js_url, payment.publishable_key).catch((error: Error) => {
      setFailed(error.message);
      return null;
    });
  }, [payment.js_url, payment.publishable_key]);
  if (!stripe) {
    return (
      <p className="error" role="alert">
        This shop has no Stripe publishable key configured, so it cannot take cards.
      </p>
    );
  }
  return (
    <>
      {failed && (
        <p className="error" role="alert">
          {failed}
        </p>
      )}
      <Elements stripe={stripe} options={{ clientSecret: payment.client_secret }}>
        <StripeForm payment={payment} orderId={orderId} onSent={onSent} />
      </Elements>
    </>
  );
}

function StripeForm({ payment, orderId, onSent }: Props) {
  const stripe = useStripe();
  const elements = useElements();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const pay = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!stripe || !elements) return;
    setBusy(true);
    setError(null);
    try {
      const result = await stripe.confirmPayment({
        elements,
        redirect: 'if_required',
        confirmParams: { return_url: returnUrl(orderId) },
      });
      if (result.error) setError(result.error.message ?? 'The payment failed; try another card.');
      else onSent();
    } catch (caught) {
      setError(`The payment could not be confirmed: ${caught instanceof Error ? caught.message : String(caught)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={pay} aria-label="Card">
      <div className="stripe-element" data-testid="payment-element">
        <PaymentElement />
      </div>
      {error && (
        <p className="error" role="alert" id="stripe-error">
          {error}
        </p>
      )}
      <button type="submit" disabled={!stripe || busy}>
        Pay {formatMoney(payment.amount)}
      </button>
    </form>
  );
}
