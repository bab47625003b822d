import { useEffect, useRef } from 'react';
import { signOut } from './api';
import { Link, navigate, route, useLocation } from './router';
import { useSession } from './session';
import { AdminPage } from './pages/Admin';
import { AuthPage } from './pages/Auth';
import { CartPage } from './pages/Cart';
import { OrderPage, OrdersPage } from './pages/Orders';
import { PayPage } from './pages/Pay';
import { ProductPage } from './pages/Product';
import { ProductsPage } from './pages/Products';

export function App() {
  const { path, query } = useLocation();
  const session = useSession();
  const current = route(path);
  const main = useRef<HTMLElement>(null);
  // Focus moves to the new page, as a full page load would (screen readers).
  useEffect(() => {
    main.current?.focus();
  }, [path]);
  const needsSession = ['cart', 'orders', 'order', 'pay', 'admin'].includes(current.page);
  useEffect(() => {
    if (needsSession && !session) {
      navigate(`/signin?next=${encodeURIComponent(path + window.location.search)}`, true);
    }
  }, [needsSession, session, path]);
  let page;
  switch (current.page) {
    case 'products':
      page = <ProductsPage query={query} session={session} />;
      break;
    case 'product':
      page = <ProductPage id={current.id} session={session} />;
      break;
    case 'signin':
    case 'signup':
      page = <AuthPage mode={current.page} next={query.get('next') ?? '/'} />;
      break;
    case 'cart':
      page = session && <CartPage session={session} />;
      break;
    case 'orders':
      page = session && <OrdersPage />;
      break;
    case 'order':
      page = session && <OrderPage id={current.id} />;
      break;
    case 'pay':
      page = session && <PayPage orderId={current.id} />;
      break;
    case 'admin':
      page = session && <AdminPage section={current.section} session={session} />;
      break;
    default:
      page = (
        <section>
          <h1>Page not found</h1>
          <p>
            There is nothing at <code>{path}</code>. <Link href="/">Back to the shop</Link>
          </p>
        </section>
      );
  }
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="bar">
        <Link href="/" className="brand">
          Pazar
        </Link>
        <nav aria-label="Main">
          <Link href="/">Shop</Link>
          {session ? (
            <>
              <Link href="/cart">Cart</Link>
              <Link href="/orders">Orders</Link>
              {session.user.role === 'admin' && <Link href="/admin/products">Admin</Link>}
              <span className="who" aria-label="Signed in as">
                {session.user.name}
              </span>
              <button type="button" className="link" onClick={() => signOut()}>
                Sign out
              </button>
            </>
          ) : (
            <>
              <Link href="/signin">Sign in</Link>
              <Link href="/signup">Create account</Link>
            </>
          )}
        </nav>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {page}
      </main>
    </>
  );
}
