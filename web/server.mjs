// The storefront's production server: `next start`'s request handler with one change. next start
// believes any X-Forwarded-For a client sends (it fills the header only when it is absent), and
// the Next server passes the shopper's address on to the BFF, whose per-IP limits and
// card-testing defence count by it. So this server sets X-Forwarded-For itself, from the socket
// (lib/client-address.mjs). PORT, HOSTNAME and TRUSTED_PROXIES configure it.
import { createServer } from "node:http";
import next from "next";
import { clientAddress, trustedProxies } from "./lib/client-address.mjs";

const port = Number(process.env.PORT ?? 3000);
const hostname = process.env.HOSTNAME ?? "127.0.0.1";
const trusted = trustedProxies(process.env.TRUSTED_PROXIES);

const app = next({ dev: false, hostname, port });
await app.prepare();
const handle = app.getRequestHandler();
const server = createServer((req, res) => {
  req.headers["x-forwarded-for"] = clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], trusted);
  handle(req, res);
});
server.listen(port, hostname, () => console.log(`storefront listening on http://${hostname}:${port}`));
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
