//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/internal/domain"
)

// chargeKeyMetadata is the PaymentIntent metadata entry in which cartflow's Stripe gateway puts
// the charge's idempotency key (internal/billing); order_id names the order it pays.
const (
	chargeKeyMetadata = "cartflow_idempotency_key"
	orderIDMetadata   = "order_id"
)

// orderRow is a checkout's order as PostgreSQL has it.
type orderRow struct {
	ID, Status, FailureCode string
	Total, Refunded         int64
	// LedgerCharges counts the charges the payments ledger records as succeeded for the order.
	LedgerCharges int
}

// ordersByKey reads the orders of the checkouts' Idempotency-Keys.
func (h *harness) ordersByKey(ctx context.Context, keys []string) (map[string]orderRow, error) {
	rows, err := h.db.Query(ctx, `SELECT o.idempotency_key, o.id::text, o.status, o.total_amount, o.refunded_amount,
			coalesce(o.failure_code, ''),
			(SELECT count(*) FROM payments p WHERE p.order_id = o.id AND p.kind = 'charge' AND p.status = 'succeeded')
		FROM orders o WHERE o.idempotency_key = ANY($1)`, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]orderRow{}
	for rows.Next() {
		var key string
		var o orderRow
		if err := rows.Scan(&key, &o.ID, &o.Status, &o.Total, &o.Refunded, &o.FailureCode, &o.LedgerCharges); err != nil {
			return nil, err
		}
		out[key] = o
	}
	return out, rows.Err()
}

// settle waits until every checkout that exists (accepted by the BFF, or with an order) has a
// final order, or until the deadline, and returns the orders as they are then.
func (h *harness) settle(ctx context.Context, cs []*checkout, deadline time.Time) (map[string]orderRow, error) {
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.Key
	}
	for {
		orders, err := h.ordersByKey(ctx, keys)
		if err == nil && (allFinal(cs, orders) || time.Now().After(deadline)) {
			return orders, nil
		}
		if err != nil && time.Now().After(deadline) {
			return nil, err
		}
		if !sleep(ctx, time.Second) {
			return nil, ctx.Err()
		}
	}
}

func allFinal(cs []*checkout, orders map[string]orderRow) bool {
	for _, c := range cs {
		o, ok := orders[c.Key]
		c.mu.Lock()
		accepted := c.Accepted
		c.mu.Unlock()
		if (ok && !final(o.Status)) || (!ok && accepted) {
			return false
		}
	}
	return true
}

// paid is what a PaymentIntent took and kept: received less refunded.
func paid(pi stripefake.PaymentIntent) int64 { return pi.AmountReceived - pi.AmountRefunded }

// keepsMoney says an order status is one whose payment the customer owes: a final order in
// another status must have had its charge refunded.
func keepsMoney(status string) bool {
	switch domain.OrderStatus(status) {
	case domain.OrderCompleted, domain.OrderPaid, domain.OrderPartiallyRefunded:
		return true
	}
	return false
}

// auditCheckouts counts a batch of checkouts into r from PostgreSQL (the orders and the ledger)
// and from what the Stripe layer holds (the PaymentIntents made since piFrom, net of refunds):
// completed, failed cleanly, refused, lost, charged twice, orphan payments, mismatches.
func (h *harness) auditCheckouts(ctx context.Context, r *row, cs []*checkout, orders map[string]orderRow, piFrom int) {
	all := h.dev.StripeProxy.PaymentIntents()
	window := all[min(piFrom, len(all)):]
	byKey := map[string][]stripefake.PaymentIntent{}
	for _, pi := range window {
		byKey[pi.Metadata[chargeKeyMetadata]] = append(byKey[pi.Metadata[chargeKeyMetadata]], pi)
	}
	ours := map[string]bool{}
	longest404 := 0
	r.Started += len(cs)
	for _, c := range cs {
		chargeKey := "checkout-" + c.Key + "/charge"
		ours[chargeKey] = true
		var kept []stripefake.PaymentIntent
		var keptAmount int64
		for _, pi := range byKey[chargeKey] {
			if paid(pi) > 0 {
				kept = append(kept, pi)
				keptAmount += paid(pi)
			}
		}
		c.mu.Lock()
		accepted, answered, refusal := c.Accepted, c.Answered, c.Refusal
		if c.NotFound > 0 {
			r.NotFoundAfterAccept++
			longest404 = max(longest404, c.NotFound)
		}
		c.mu.Unlock()
		o, hasOrder := orders[c.Key]
		switch why, underFault := r.lostUnderFault[c.Key]; {
		case underFault:
			r.lost(c.Key, why+"; now "+o.Status)
		case !hasOrder && (accepted || len(byKey[chargeKey]) > 0):
			r.lost(c.Key, fmt.Sprintf("accepted by the BFF (or charged: %d PaymentIntents), but no order exists", len(byKey[chargeKey])))
		case !hasOrder && !answered:
			r.lost(c.Key, "no answer to any attempt, and no trace in PostgreSQL")
		case !hasOrder:
			// Every attempt was refused (503 to the end, or a 4xx): nothing started, nothing charged.
			r.Refused++
			if refusal != "" {
				r.finding("%s: refused with %s, nothing started", c.Key, refusal)
			}
		case !final(o.Status):
			r.lost(c.Key, fmt.Sprintf("order %s still %s after the deadline", o.ID, o.Status))
		case o.Status == string(domain.OrderCompleted):
			r.Completed++
			if keptAmount != o.Total || len(kept) == 0 {
				r.mismatch(c.Key, fmt.Sprintf("order %s completed for %d, but Stripe keeps %d in %d PaymentIntents", o.ID, o.Total, keptAmount, len(kept)))
			}
			if c.Declines {
				r.mismatch(c.Key, fmt.Sprintf("order %s completed with a card that always declines", o.ID))
			}
		default:
			r.FailedCleanly++
			if o.FailureCode == "" && o.Status != string(domain.OrderRefunded) {
				r.mismatch(c.Key, fmt.Sprintf("order %s is %s without a failure code", o.ID, o.Status))
			}
		}
		if len(kept) > 1 {
			r.DoubleCharged++
			r.finding("%s: DOUBLE CHARGE: Stripe keeps %d payments for one charge key: %s", c.Key, len(kept), piSummary(kept))
		}
		if hasOrder && o.LedgerCharges > 1 {
			r.mismatch(c.Key, fmt.Sprintf("order %s: the ledger records %d succeeded charges", o.ID, o.LedgerCharges))
		}
		if len(kept) > 0 && (!hasOrder || (final(o.Status) && !keepsMoney(o.Status))) {
			r.Orphans++
			status := "no order"
			if hasOrder {
				status = "order " + o.ID + " " + o.Status
			}
			r.finding("%s: ORPHAN PAYMENT: %s, but Stripe keeps %s", c.Key, status, piSummary(kept))
		}
	}
	h.auditStrays(ctx, r, window, ours)
	if longest404 > 0 {
		r.note("%d checkouts answered 202 had their status URL answer 404 until the order was written, one for %d reads (about %.0f s)",
			r.NotFoundAfterAccept, longest404, float64(longest404)/2)
	}
	// How hard the faults hit: charges the ledger saw begin more than once (a retried attempt).
	var retried, retries int
	if err := h.db.QueryRow(ctx, `SELECT count(*), coalesce(sum(p.attempts - 1), 0) FROM payments p JOIN orders o ON o.id = p.order_id
		WHERE o.idempotency_key = ANY($1) AND p.kind = 'charge' AND p.attempts > 1`, keysOf(cs)).Scan(&retried, &retries); err == nil {
		r.note("%d of %d charges were retried (%d retries in all), by the ledger", retried, len(cs), retries)
	}
}

// auditStrays counts, among PaymentIntents that keep money and belong to none of the scenario's
// own checkouts, those whose order (metadata order_id) does not exist or is not one that keeps
// its payment: orphans cartflow made on a path the batch does not cover.
func (h *harness) auditStrays(ctx context.Context, r *row, window []stripefake.PaymentIntent, ours map[string]bool) {
	for _, pi := range window {
		if paid(pi) <= 0 || ours[pi.Metadata[chargeKeyMetadata]] {
			continue
		}
		var status string
		err := h.db.QueryRow(ctx, `SELECT status FROM orders WHERE id::text = $1`, pi.Metadata[orderIDMetadata]).Scan(&status)
		if err == nil && keepsMoney(status) {
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "no rows") {
			r.finding("PaymentIntent %s: its order could not be read: %v", pi.ID, err)
			continue
		}
		r.Orphans++
		r.finding("ORPHAN PAYMENT %s (key %q, order %q %s): Stripe keeps %d", pi.ID, pi.Metadata[chargeKeyMetadata],
			pi.Metadata[orderIDMetadata], status, paid(pi))
	}
}

func piSummary(pis []stripefake.PaymentIntent) string {
	parts := make([]string, len(pis))
	for i, pi := range pis {
		parts[i] = fmt.Sprintf("%s %s %d-%d", pi.ID, pi.Status, pi.AmountReceived, pi.AmountRefunded)
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
