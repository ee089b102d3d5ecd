/** formatMoney shows an amount in minor units of an ISO-4217 currency, as the customer's locale would. */
export function formatMoney(minor: number, currency: string, locale = "en-US"): string {
  const code = currency.toUpperCase();
  const fmt = new Intl.NumberFormat(locale, { style: "currency", currency: code });
  // The currency's own exponent (JPY 0, USD 2, KWD 3) turns minor units into major ones.
  const digits = fmt.resolvedOptions().maximumFractionDigits ?? 2;
  return fmt.format(minor / 10 ** digits);
}
