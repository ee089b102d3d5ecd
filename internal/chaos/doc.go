// Package chaos holds no code, only the fault suite behind `make chaos` (its files carry the
// chaos build tag): one stack like make dev's, the worker and the BFF as separate processes,
// driven over HTTP through the BFF while the worker is SIGKILLed, the Temporal dev server and
// PostgreSQL are restarted, the Stripe layer fails, drops, slows down and is flooded with
// duplicate requests and replayed webhooks, and renewals lose their worker mid-sweep. A
// supervisor brings back whatever a scenario took down. Each scenario is counted from what the
// provider double holds and what PostgreSQL says, never from the BFF's answers alone: orders
// lost, customers charged twice, payments without a paid order, and 5xx answers other than 503.
package chaos
