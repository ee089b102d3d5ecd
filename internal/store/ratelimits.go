package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cartflow/cartflow/internal/store/db"
)

// The rate limits' and the card-testing defence's rows (queries/rate_limits.sql). Every IP and
// email arrives here already hashed by the caller; the store never sees them in clear.

// IncrementRateCounter counts one request of keyHash in bucket's window that starts at
// windowStart and returns the window's count, this request included. It is one upsert, so
// every BFF replica counting the same key adds to the same row.
func (s *Store) IncrementRateCounter(ctx context.Context, bucket, keyHash string, windowStart time.Time) (int, error) {
	n, err := s.q.IncrementRateCounter(ctx, db.IncrementRateCounterParams{Bucket: bucket, KeyHash: keyHash, WindowStart: windowStart.UTC()})
	return int(n), err
}

// PaymentSource is where a workflow's payment request came from, as hashes.
type PaymentSource struct {
	IPHash    string
	EmailHash string
}

// RecordPaymentSource records the source of the payment requests of workflowID; the latest wins.
func (s *Store) RecordPaymentSource(ctx context.Context, workflowID string, src PaymentSource) error {
	return s.q.RecordCheckoutSource(ctx, db.RecordCheckoutSourceParams{WorkflowID: workflowID, IpHash: src.IPHash, EmailHash: src.EmailHash})
}

// PaymentSourceOf is the source recorded for workflowID, or ErrNotFound.
func (s *Store) PaymentSourceOf(ctx context.Context, workflowID string) (PaymentSource, error) {
	row, err := s.q.SourceOfWorkflow(ctx, workflowID)
	if errors.Is(err, pgx.ErrNoRows) {
		return PaymentSource{}, ErrNotFound
	}
	return PaymentSource{IPHash: row.IpHash, EmailHash: row.EmailHash}, err
}

// RecordDecline records one declined payment or card check of workflowID, attributed to the
// source recorded for it (none for a renewal), with the card's fingerprint when the provider
// gave one.
func (s *Store) RecordDecline(ctx context.Context, workflowID, provider, fingerprint string) error {
	var fp *string
	if fingerprint != "" {
		fp = &fingerprint
	}
	return s.q.RecordDecline(ctx, db.RecordDeclineParams{WorkflowID: workflowID, Provider: provider, Fingerprint: fp})
}

// DeclineCounts are the declines of one source since a time.
type DeclineCounts struct {
	IP, Email, Fingerprint int
}

// CountDeclines counts the declines since since by IP hash, email hash and card fingerprint; an
// empty one counts 0.
func (s *Store) CountDeclines(ctx context.Context, src PaymentSource, fingerprint string, since time.Time) (DeclineCounts, error) {
	row, err := s.q.CountDeclines(ctx, db.CountDeclinesParams{IpHash: src.IPHash, EmailHash: src.EmailHash, Fingerprint: fingerprint, Since: since})
	if err != nil {
		return DeclineCounts{}, err
	}
	// NULL hashes never equal '', so an empty value matches nothing.
	return DeclineCounts{IP: int(row.ByIp), Email: int(row.ByEmail), Fingerprint: int(row.ByFingerprint)}, nil
}

// RateLimitCounterRetention is how long a rate-limit counter is kept after its window started:
// longer than any window, so the cleanup never deletes a live one.
const RateLimitCounterRetention = 24 * time.Hour

// PruneRateLimits deletes up to limit rows of each of the rate limits' tables: counters whose
// window started more than RateLimitCounterRetention before now (their window is over), and
// declines and payment sources recorded before olderThan. It returns how many rows it deleted;
// a batch of fewer than limit of each means the task is done.
func (s *Store) PruneRateLimits(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	// A counter is useless once its window is over, and the record retention (months) would
	// keep hashed IPs far longer than needed: counters have their own, fixed cutoff.
	counterCutoff := time.Now().Add(-RateLimitCounterRetention)
	counters, err := batch(ctx, limit, "prune rate limit counters", s.q.PruneRateCounters,
		db.PruneRateCountersParams{OlderThan: counterCutoff, MaxRows: int64(limit)})
	if err != nil {
		return 0, err
	}
	declines, err := batch(ctx, limit, "prune payment declines", s.q.PruneDeclines,
		db.PruneDeclinesParams{OlderThan: olderThan, MaxRows: int64(limit)})
	if err != nil {
		return 0, err
	}
	sources, err := batch(ctx, limit, "prune payment sources", s.q.PruneCheckoutSources,
		db.PruneCheckoutSourcesParams{OlderThan: olderThan, MaxRows: int64(limit)})
	if err != nil {
		return 0, err
	}
	return max(counters, declines, sources), nil
}
