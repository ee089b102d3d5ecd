// Stripe.js is loaded from js.stripe.com at run time, only when the payment config names a real
// publishable key (Stripe requires it be loaded from there; it is never bundled).

/** StripeLike is the small part of Stripe.js the storefront uses. */
export type StripeLike = {
  elements: () => { create: (type: "card") => { mount: (el: HTMLElement) => void } };
  createPaymentMethod: (opts: { type: "card"; card: unknown }) => Promise<{ paymentMethod?: { id: string }; error?: { message: string } }>;
  handleNextAction: (opts: { clientSecret: string }) => Promise<{ error?: { message: string } }>;
};

let loading: Promise<StripeLike> | null = null;

/** loadStripe loads Stripe.js once and returns a client for the publishable key. */
export function loadStripe(publishableKey: string): Promise<StripeLike> {
  loading ??= new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "https://js.stripe.com/v3/";
    s.async = true;
    s.onload = () => {
      const S = (window as unknown as { Stripe?: (k: string) => StripeLike }).Stripe;
      if (S) resolve(S(publishableKey));
      else reject(new Error("Stripe.js did not load"));
    };
    s.onerror = () => reject(new Error("Stripe.js did not load"));
    document.head.appendChild(s);
  });
  return loading;
}
