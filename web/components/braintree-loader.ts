// Braintree's client (braintree-web) is loaded from js.braintreegateway.com at run time, only
// when the payment config names a real tokenization key. Hosted Fields keep the card number in
// Braintree's iframes: the storefront only receives the nonce.

const version = "3.103.0";

/** HostedFieldsLike is the small part of Braintree's Hosted Fields the storefront uses. */
export type HostedFieldsLike = { tokenize: () => Promise<{ nonce: string }> };

type BraintreeGlobal = {
  client: { create: (o: { authorization: string }) => Promise<unknown> };
  hostedFields: { create: (o: { client: unknown; fields: Record<string, { container: string; placeholder?: string }> }) => Promise<HostedFieldsLike> };
};

function script(src: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.async = true;
    s.onload = () => resolve();
    s.onerror = () => reject(new Error(`${src} did not load`));
    document.head.appendChild(s);
  });
}

let loading: Promise<BraintreeGlobal> | null = null;

/** createHostedFields loads braintree-web once and mounts card fields in the given containers. */
export async function createHostedFields(tokenizationKey: string, ids: { number: string; cvv: string; expirationDate: string }): Promise<HostedFieldsLike> {
  loading ??= (async () => {
    const base = `https://js.braintreegateway.com/web/${version}/js`;
    await script(`${base}/client.min.js`);
    await script(`${base}/hosted-fields.min.js`);
    const bt = (window as unknown as { braintree?: BraintreeGlobal }).braintree;
    if (!bt) throw new Error("braintree-web did not load");
    return bt;
  })();
  const bt = await loading;
  const client = await bt.client.create({ authorization: tokenizationKey });
  return bt.hostedFields.create({
    client,
    fields: {
      number: { container: `#${ids.number}`, placeholder: "Card number" },
      cvv: { container: `#${ids.cvv}`, placeholder: "CVV" },
      expirationDate: { container: `#${ids.expirationDate}`, placeholder: "MM/YY" },
    },
  });
}
