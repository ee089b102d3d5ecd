import Link from "next/link";
import { PlanPrice } from "@/components/Price";
import { Unavailable } from "@/components/Unavailable";
import { getCatalog } from "@/lib/catalog";

export const dynamic = "force-dynamic";

/** Catalog is the store's front page: every active product. */
export default async function Catalog() {
  const catalog = await getCatalog();
  if (!catalog.ok) return <Unavailable message={catalog.error.message} />;
  return (
    <>
      <h1>Catalog</h1>
      <ul className="grid">
        {catalog.products.map((p) => (
          <li key={p.sku} className="card">
            <h2>
              <Link href={`/products/${p.sku}`}>{p.name}</Link>
            </h2>
            <PlanPrice p={p} />
          </li>
        ))}
      </ul>
    </>
  );
}
