import { cookies } from "next/headers";
import { cartSecret } from "./env";
import { type Cart, decodeCart, encodeCart } from "./cart-codec";

/** cartCookie is the signed cart cookie's name. */
export const cartCookie = "cartflow_cart";

/** readCart is the customer's cart from the signed cookie (empty when missing or forged). */
export async function readCart(): Promise<Cart> {
  return decodeCart((await cookies()).get(cartCookie)?.value, cartSecret());
}

/** writeCart stores the cart; only server actions and route handlers may call it. */
export async function writeCart(cart: Cart): Promise<void> {
  (await cookies()).set({
    name: cartCookie,
    value: encodeCart(cart, cartSecret()),
    httpOnly: true,
    sameSite: "lax",
    path: "/",
    secure: (process.env.STOREFRONT_URL ?? "").startsWith("https://"),
    maxAge: 60 * 60 * 24 * 30,
  });
}
