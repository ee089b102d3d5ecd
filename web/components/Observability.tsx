"use client";

import { usePathname } from "next/navigation";
import { useEffect } from "react";
import { initAnalytics, track } from "@/lib/analytics-client";

let sentryStarted = false;

/**
 * Observability starts Sentry (with a DSN) and Mixpanel (with a token) in the browser, each
 * loaded on demand, and tracks a page view per path. The settings arrive from the server at
 * run time, so one build serves every environment.
 */
export function Observability({ dsn, token, environment }: { dsn?: string; token?: string; environment?: string }) {
  const pathname = usePathname();
  useEffect(() => {
    if (!dsn || sentryStarted) return;
    sentryStarted = true;
    void import("@sentry/nextjs").then((Sentry) =>
      Sentry.init({ dsn, environment, sendDefaultPii: false, tracesSampleRate: 0 }),
    );
  }, [dsn, environment]);
  useEffect(() => {
    if (token) void initAnalytics(token);
  }, [token]);
  useEffect(() => {
    track("page_viewed", { path: pathname });
  }, [pathname]);
  return null;
}

/** Track sends one event when it is shown; insertId names the occurrence, so a reload does not count it twice. */
export function Track({ event, props, insertId }: { event: string; props: Record<string, unknown>; insertId?: string }) {
  const key = JSON.stringify(props);
  useEffect(() => {
    track(event, JSON.parse(key), insertId);
  }, [event, key, insertId]);
  return null;
}
