import { useState, type FormEvent } from 'react';
import { api, ApiError, saveSession, type User } from '../api';
import { Link, navigate } from '../router';
import { Field } from './Field';

type Answer = { access_token: string; expires_in: number; user: User };

/** Sign in, or create an account; then back to where the visitor was going. */
export function AuthPage({ mode, next }: { mode: 'signin' | 'signup'; next: string }) {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const signup = mode === 'signup';
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const body = Object.fromEntries(form.entries());
    setBusy(true);
    setError(null);
    try {
      const answer = await api<Answer>(signup ? '/api/v1/auth/register' : '/api/v1/auth/login', {
        method: 'POST',
        body,
      });
      saveSession(answer);
      // Only a path of this site.
      navigate(next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : new ApiError({ status: 0, detail: String(caught) }));
    } finally {
      setBusy(false);
    }
  };
  const general = error && !error.field ? error.message : undefined;
  return (
    <section className="narrow">
      <h1>{signup ? 'Create an account' : 'Sign in'}</h1>
      <form onSubmit={submit} noValidate>
        {signup && <Field id="name" label="Name" autoComplete="name" required error={error?.messageFor('name')} />}
        <Field id="email" label="E-mail" type="email" autoComplete="email" required error={error?.messageFor('email')} />
        <Field
          id="password"
          label="Password"
          type="password"
          autoComplete={signup ? 'new-password' : 'current-password'}
          required
          minLength={signup ? 8 : undefined}
          error={error?.messageFor('password')}
        />
        {general && (
          <p className="error" role="alert">
            {general}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {signup ? 'Create account' : 'Sign in'}
        </button>
      </form>
      <p>
        {signup ? (
          <>
            Have an account? <Link href={`/signin?next=${encodeURIComponent(next)}`}>Sign in</Link>
          </>
        ) : (
          <>
            New here? <Link href={`/signup?next=${encodeURIComponent(next)}`}>Create an account</Link>
          </>
        )}
      </p>
    </section>
  );
}
