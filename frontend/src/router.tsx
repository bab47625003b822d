// A small history-API router: real URLs (/, /products/{id}, /cart, /orders,
// /orders/{id}, /pay/{order_id}, /admin/{section}), each answered by the server
// with the app.
import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from 'react';

const NAVIGATED = 'pazar:navigated';

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new Event(NAVIGATED));
  window.scrollTo?.(0, 0);
}

/** The current path and query, following navigation. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const read = () => ({ path: window.location.pathname, search: window.location.search });
  const [where, setWhere] = useState(read);
  useEffect(() => {
    const update = () => setWhere(read());
    window.addEventListener('popstate', update);
    window.addEventListener(NAVIGATED, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(NAVIGATED, update);
    };
  }, []);
  return { path: where.path, query: new URLSearchParams(where.search) };
}

/** Which page a path is, with its parameter. */
export type Route =
  | { page: 'products' }
  | { page: 'product'; id: string }
  | { page: 'cart' }
  | { page: 'orders' }
  | { page: 'order'; id: string }
  | { page: 'pay'; id: string }
  | { page: 'signin' }
  | { page: 'signup' }
  | { page: 'admin'; section: string }
  | { page: 'missing' };

export function route(path: string): Route {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  switch (parts[0]) {
    case undefined:
      return { page: 'products' };
    case 'products':
      return parts[1] ? { page: 'product', id: parts[1] } : { page: 'products' };
    case 'cart':
      return { page: 'cart' };
    case 'orders':
      return parts[1] ? { page: 'order', id: parts[1] } : { page: 'orders' };
    case 'pay':
      return parts[1] ? { page: 'pay', id: parts[1] } : { page: 'missing' };
    case 'signin':
      return { page: 'signin' };
    case 'signup':
      return { page: 'signup' };
    case 'admin':
      return { page: 'admin', section: parts[1] ?? 'products' };
    default:
      return { page: 'missing' };
  }
}

/** A link that navigates in place (a new tab or window still works). */
export function Link({ href, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const click = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return <a href={href} onClick={click} {...rest} />;
}
