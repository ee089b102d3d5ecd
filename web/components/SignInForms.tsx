"use client";

import { useActionState, useEffect, useRef } from "react";
import { exchangeSignInToken, requestSignInLink, type SignInState } from "@/app/account-actions";

/** SignInForms asks for a link by email, or, with a token from the link, finishes signing in with one click. */
export function SignInForms({ token, next }: { token?: string; next: string }) {
  const [linkState, askLink, asking] = useActionState(requestSignInLink, { kind: "idle" } as SignInState);
  const [tokenState, exchange, exchanging] = useActionState(exchangeSignInToken, { kind: "idle" } as SignInState);
  const msg = useRef<HTMLDivElement>(null);
  useEffect(() => msg.current?.focus(), [linkState, tokenState]);
  return (
    <>
      {token && tokenState.kind !== "error" ? (
        // A click, not an automatic exchange: mail scanners that open links must not use up the token.
        <form action={exchange}>
          <input type="hidden" name="token" value={token} />
          <input type="hidden" name="next" value={next} />
          <p>You are signing in from your email link.</p>
          <button type="submit" className="primary" disabled={exchanging}>
            {exchanging ? "Signing in…" : "Sign in"}
          </button>
        </form>
      ) : null}
      {tokenState.kind === "error" ? (
        <div ref={msg} tabIndex={-1} role="alert" className="banner error">
          {tokenState.message}
        </div>
      ) : null}
      {!token || tokenState.kind === "error" ? (
        linkState.kind === "sent" ? (
          <div ref={msg} tabIndex={-1} role="status" className="banner ok" data-testid="link-sent">
            If {linkState.email} has an account, a sign-in link is on its way. It works once, for 15 minutes.
          </div>
        ) : (
          <form action={askLink} aria-label="Email me a sign-in link">
            {linkState.kind === "error" ? (
              <div ref={msg} tabIndex={-1} role="alert" className="banner error">
                {linkState.message}
              </div>
            ) : null}
            <input type="hidden" name="next" value={next} />
            <div className="field">
              <label htmlFor="signin-email">Email</label>
              <input id="signin-email" name="email" type="email" autoComplete="email" required />
            </div>
            <button type="submit" className="primary" disabled={asking}>
              Email me a sign-in link
            </button>
          </form>
        )
      ) : null}
    </>
  );
}
