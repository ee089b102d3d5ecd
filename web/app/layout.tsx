import type { Metadata, Viewport } from "next";
import Link from "next/link";
import { Observability } from "@/components/Observability";
import { readCart } from "@/lib/cart";
import { cartCount } from "@/lib/cart-codec";
import "./globals.css";

export const metadata: Metadata = { title: { default: "cartflow store", template: "%s · cartflow store" } };
export const viewport: Viewport = { width: "device-width", initialScale: 1 };

/** RootLayout is every page's frame: a skip link, the header with the cart count, and the main landmark. */
export default async function RootLayout({ children }: { children: React.ReactNode }) {
  const count = cartCount(await readCart());
  return (
    <html lang="en">
      <body>
        <a href="#main" className="skip">
          Skip to content
        </a>
        <header className="site">
          <Link href="/" className="brand">
            cartflow
          </Link>
          <nav aria-label="Main">
            <Link href="/">Catalog</Link>
            <Link href="/cart" data-testid="cart-link">
              Cart{count ? ` (${count})` : ""}
            </Link>
            <Link href="/account">Account</Link>
          </nav>
        </header>
        <main id="main">{children}</main>
        <Observability
          dsn={process.env.STOREFRONT_SENTRY_DSN || process.env.SENTRY_DSN || undefined}
          token={process.env.MIXPANEL_TOKEN || undefined}
          environment={process.env.SENTRY_ENVIRONMENT ?? process.env.CARTFLOW_ENV}
        />
      </body>
    </html>
  );
}
