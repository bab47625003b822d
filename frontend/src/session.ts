import { useEffect, useState } from 'react';
import { currentSession, onSessionChange, type Session } from './api';

/** The signed-in session, following sign in, sign out and expiry. */
export function useSession(): Session | null {
  const [session, setSession] = useState(() => currentSession());
  useEffect(() => {
    const update = () => setSession(currentSession());
    const unsubscribe = onSessionChange(update);
    // A token expires while the page is open: notice it.
    const every = window.setInterval(update, 30_000);
    return () => {
      unsubscribe();
      window.clearInterval(every);
    };
  }, []);
  return session;
}
