package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cartflow/cartflow/internal/store/db"
)

// The Idempotency-Keys of the BFF's mutating endpoints (queries/idempotency_keys.sql), with
// Stripe's semantics: a key belongs to its first request (scope and fingerprint), and the first
// final answer is stored and served to every repeat. A request claims its key before its
// handler runs and holds it for a lease. The lease's end (locked_until) doubles as the
// claimant's token, so that a request whose lease ran out, and was taken over, can no longer
// release or forget the key under the request that took it over.

// IdempotencyRequest is a request as its Idempotency-Key records it.
type IdempotencyRequest struct {
	Key string
	// Scope is the endpoint and the resource it acts on, e.g. "POST /api/v1/orders/:id/refunds id=…".
	Scope string
	// Fingerprint identifies the request's content within its scope.
	Fingerprint string
}

// IdempotentResponse is a final answer kept under a key, served again byte for byte.
type IdempotentResponse struct {
	Status int
	Header map[string][]string
	Body   []byte
}

// IdempotencyOutcome is what claiming a key found.
type IdempotencyOutcome int

// The outcomes of ClaimIdempotencyKey.
const (
	// IdempotencyClaimed: this request holds the key until LockedUntil and runs.
	IdempotencyClaimed IdempotencyOutcome = iota + 1
	// IdempotencyReplay: the key already has a final answer, in Response.
	IdempotencyReplay
	// IdempotencyInProgress: another request holds the key, for RetryAfter more.
	IdempotencyInProgress
	// IdempotencyMismatch: the key belongs to a different request (another endpoint, resource or body).
	IdempotencyMismatch
)

// IdempotencyClaim is the result of ClaimIdempotencyKey.
type IdempotencyClaim struct {
	Outcome IdempotencyOutcome
	// LockedUntil is the claimant's lease, and its token for Release and Forget.
	LockedUntil time.Time
	// RetryAfter is how long the holder's lease has left, when the key is in progress.
	RetryAfter time.Duration
	// Response is the stored answer, when it is a replay.
	Response IdempotentResponse
}

// claimAttempts bounds the claim's retries when the key changes between the claim and the read
// (released, or pruned, in between): each of those moves it towards claimable.
const claimAttempts = 3

// ClaimIdempotencyKey claims req's key for lease, or says why it cannot: a stored answer to
// replay, another request holding it, or a key that belongs to a different request.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, req IdempotencyRequest, lease time.Duration) (IdempotencyClaim, error) {
	for range claimAttempts {
		until, err := s.q.ClaimIdempotencyKey(ctx, db.ClaimIdempotencyKeyParams{
			Key: req.Key, Scope: req.Scope, Fingerprint: req.Fingerprint, LeaseSeconds: lease.Seconds(),
		})
		if err == nil {
			return IdempotencyClaim{Outcome: IdempotencyClaimed, LockedUntil: until}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return IdempotencyClaim{}, fmt.Errorf("claim idempotency key: %w", err)
		}
		row, err := s.q.IdempotencyKey(ctx, req.Key)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return IdempotencyClaim{}, fmt.Errorf("read idempotency key: %w", err)
		}
		switch {
		case row.Scope != req.Scope || row.Fingerprint != req.Fingerprint:
			return IdempotencyClaim{Outcome: IdempotencyMismatch}, nil
		case row.ResponseStatus != nil:
			resp := IdempotentResponse{Status: int(*row.ResponseStatus), Body: row.ResponseBody}
			if err := json.Unmarshal(row.ResponseHeaders, &resp.Header); err != nil {
				return IdempotencyClaim{}, fmt.Errorf("read idempotency key: stored headers: %w", err)
			}
			return IdempotencyClaim{Outcome: IdempotencyReplay, Response: resp}, nil
		case row.LockedUntil != nil && row.LockedUntil.After(row.DbNow):
			return IdempotencyClaim{Outcome: IdempotencyInProgress, LockedUntil: *row.LockedUntil,
				RetryAfter: row.LockedUntil.Sub(row.DbNow)}, nil
		}
		// Released or expired since the claim: claim again.
	}
	return IdempotencyClaim{}, fmt.Errorf("claim idempotency key: the key changed under %d claims in a row", claimAttempts)
}

// SaveIdempotentResponse stores the final answer to the request holding key and frees the key.
// The first final answer wins; a later one changes nothing.
func (s *Store) SaveIdempotentResponse(ctx context.Context, key string, resp IdempotentResponse) error {
	header, err := json.Marshal(resp.Header)
	if err != nil {
		return fmt.Errorf("save idempotent response: %w", err)
	}
	if _, err := s.q.SaveIdempotentResponse(ctx, db.SaveIdempotentResponseParams{
		Key: key, Status: int32(resp.Status), Headers: header, Body: resp.Body,
	}); err != nil {
		return fmt.Errorf("save idempotent response: %w", err)
	}
	return nil
}

// ReleaseIdempotencyKey frees the key of a request that ended without a final answer, if the
// request still holds it (lockedUntil is its token). The key keeps its request, so that only a
// repeat of the same request runs again.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, key string, lockedUntil time.Time) error {
	if _, err := s.q.ReleaseIdempotencyKey(ctx, db.ReleaseIdempotencyKeyParams{Key: key, LockedUntil: lockedUntil}); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// ForgetIdempotencyKey deletes the key of a request refused before its endpoint did anything,
// if the request still holds it: the key is free for a corrected request, as with Stripe.
func (s *Store) ForgetIdempotencyKey(ctx context.Context, key string, lockedUntil time.Time) error {
	if _, err := s.q.ForgetIdempotencyKey(ctx, db.ForgetIdempotencyKeyParams{Key: key, LockedUntil: lockedUntil}); err != nil {
		return fmt.Errorf("forget idempotency key: %w", err)
	}
	return nil
}

// IdempotencyKeyMinRetention is how long a key is kept at least, whatever the cleanup's cutoff
// (the query enforces it): a client may retry under a key for that long.
const IdempotencyKeyMinRetention = 30 * 24 * time.Hour

// PruneIdempotencyKeys deletes up to limit Idempotency-Keys created before olderThan, and never
// one younger than IdempotencyKeyMinRetention, oldest first, and returns how many it deleted.
func (s *Store) PruneIdempotencyKeys(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	return batch(ctx, limit, "prune idempotency keys", s.q.PruneIdempotencyKeys,
		db.PruneIdempotencyKeysParams{OlderThan: olderThan, MaxRows: int64(limit)})
}
