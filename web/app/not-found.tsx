import Link from "next/link";

/** NotFound is the page for an unknown path, product or order. */
export default function NotFound() {
  return (
    <>
      <h1>Not found</h1>
      <p>There is nothing here.</p>
      <Link href="/">Back to the catalog</Link>
    </>
  );
}
