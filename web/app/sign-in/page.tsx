import { SignInForms } from "@/components/SignInForms";
import { safeNext } from "@/lib/next-path";

export const dynamic = "force-dynamic";
export const metadata = { title: "Sign in" };

/** SignInPage is where the emailed link lands (?token=…) and where a customer asks for one. */
export default async function SignInPage({ searchParams }: { searchParams: Promise<{ token?: string; next?: string }> }) {
  const sp = await searchParams;
  return (
    <>
      <h1>Sign in</h1>
      <p className="muted">No password: we email you a link.</p>
      <SignInForms token={typeof sp.token === "string" ? sp.token : undefined} next={safeNext(sp.next)} />
    </>
  );
}
