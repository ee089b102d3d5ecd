// register runs once when the Next server starts: a production server without CART_SECRET
// refuses to start, rather than serving errors from a customer's first request on.
export async function register() {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { cartSecret } = await import("./lib/env");
  try {
    cartSecret();
  } catch (err) {
    console.error(`storefront: ${(err as Error).message}`);
    process.exit(1);
  }
}
