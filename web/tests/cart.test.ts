import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { addItem, cartCount, decodeCart, emptyCart, encodeCart, removeItem, setQuantity, type CartProduct } from "@/lib/cart-codec";

const secret = "test-secret";
const mug: CartProduct = { sku: "mug-enamel", kind: "one_off" };
const shirt: CartProduct = { sku: "tshirt-classic", kind: "one_off" };
const plan: CartProduct = { sku: "plan-monthly", kind: "subscription" };
const catalog = [mug, shirt, plan];

describe("the signed cart cookie", () => {
  it("reads back what it wrote", () => {
    const cart = addItem(emptyCart(), mug, 2, catalog);
    expect(decodeCart(encodeCart(cart, secret), secret)).toEqual(cart);
  });

  it("gives an empty cart for an edited payload", () => {
    const value = encodeCart(addItem(emptyCart(), mug, 1, catalog), secret);
    const [, sig] = value.split(".");
    const forged = Buffer.from(JSON.stringify({ items: [{ sku: "mug-enamel", quantity: 99 }], attempt: "co_xxxxxxxx" })).toString("base64url");
    expect(decodeCart(`${forged}.${sig}`, secret).items).toEqual([]);
  });

  it("gives an empty cart for another key's signature, or garbage", () => {
    const value = encodeCart(addItem(emptyCart(), mug, 1, catalog), "other-secret");
    expect(decodeCart(value, secret).items).toEqual([]);
    expect(decodeCart("not-a-cart", secret).items).toEqual([]);
    expect(decodeCart(undefined, secret).items).toEqual([]);
  });

  it("drops lines the BFF would refuse", () => {
    const payload = Buffer.from(
      JSON.stringify({ items: [{ sku: "BAD SKU", quantity: 1 }, { sku: "mug-enamel", quantity: 0 }, { sku: "tshirt-classic", quantity: 2 }], attempt: "co_abcdefgh" }),
    ).toString("base64url");
    const sig = createHmac("sha256", secret).update(payload).digest("base64url");
    expect(decodeCart(`${payload}.${sig}`, secret).items).toEqual([{ sku: "tshirt-classic", quantity: 2 }]);
  });
});

describe("changing the cart", () => {
  it("adds to an existing line and caps the quantity at 99", () => {
    let cart = addItem(emptyCart(), mug, 60, catalog);
    cart = addItem(cart, mug, 60, catalog);
    expect(cart.items).toEqual([{ sku: "mug-enamel", quantity: 99 }]);
  });

  it("buys a plan alone: adding a plan replaces the cart, adding a product drops the plan", () => {
    let cart = addItem(addItem(emptyCart(), mug, 2, catalog), plan, 3, catalog);
    expect(cart.items).toEqual([{ sku: "plan-monthly", quantity: 1 }]);
    cart = addItem(cart, shirt, 1, catalog);
    expect(cart.items).toEqual([{ sku: "tshirt-classic", quantity: 1 }]);
  });

  it("updates and removes lines; 0 removes", () => {
    let cart = addItem(addItem(emptyCart(), mug, 1, catalog), shirt, 1, catalog);
    cart = setQuantity(cart, "mug-enamel", 4);
    expect(cartCount(cart)).toBe(5);
    cart = setQuantity(cart, "mug-enamel", 0);
    expect(cart.items).toEqual([{ sku: "tshirt-classic", quantity: 1 }]);
    cart = removeItem(cart, "tshirt-classic");
    expect(cart.items).toEqual([]);
  });

  it("starts a new checkout attempt when the lines change, and keeps it when nothing changed", () => {
    const cart = addItem(emptyCart(), mug, 1, catalog);
    expect(setQuantity(cart, "mug-enamel", 2).attempt).not.toBe(cart.attempt);
    expect(removeItem(cart, "no-such-sku").attempt).toBe(cart.attempt);
    expect(setQuantity(cart, "mug-enamel", -1)).toBe(cart);
    expect(cart.attempt).toMatch(/^[A-Za-z0-9._:-]{8,100}$/);
  });
});
