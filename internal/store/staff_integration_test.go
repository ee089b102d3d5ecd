//go:build integration

package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cartflow/cartflow/internal/staffkey"
	"github.com/cartflow/cartflow/internal/store"
)

func newStaffKey(t *testing.T, db *testDB, name string, scopes ...string) (string, staffkey.Key) {
	t.Helper()
	secret, err := staffkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.store.CreateStaffKey(context.Background(), name, secret, scopes)
	if err != nil {
		t.Fatalf("create staff key: %v", err)
	}
	return secret, k
}

func TestStaffKeysAreFoundByHashUntilRevoked(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	secret, k := newStaffKey(t, db, "Ada", staffkey.ScopeRefunds, staffkey.ScopeOrdersRead)
	if k.ID == "" || k.Name != "Ada" || k.Prefix != staffkey.DisplayPrefix(secret) || k.RevokedAt != nil ||
		strings.Join(k.Scopes, ",") != "refunds,orders:read" {
		t.Fatalf("created %+v", k)
	}
	got, err := db.store.StaffKeyByHash(ctx, staffkey.Hash(secret))
	if err != nil || got.ID != k.ID || !got.Has(staffkey.ScopeRefunds) || got.Has(staffkey.ScopeOps) {
		t.Fatalf("by hash: %+v, %v", got, err)
	}
	other, _ := staffkey.Generate()
	if _, err := db.store.StaffKeyByHash(ctx, staffkey.Hash(other)); !errors.Is(err, staffkey.ErrUnknown) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}

	// The row holds the hash and the prefix, never the key.
	var row string
	if err := db.pool.QueryRow(ctx, `SELECT concat_ws('|', id, name, prefix, encode(key_hash, 'escape'), encode(key_hash, 'hex'),
		encode(key_hash, 'base64'), scopes::text) FROM staff_keys WHERE id = $1`, k.ID).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row, secret) || strings.Contains(row, strings.TrimPrefix(secret, staffkey.Prefix)) {
		t.Fatalf("the staff_keys row holds the key: %s", row)
	}

	// Touch writes last_used_at.
	if err := db.store.TouchStaffKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.store.StaffKeyByHash(ctx, staffkey.Hash(secret)); got.LastUsedAt == nil {
		t.Fatal("last_used_at not set by a touch")
	}

	// Revoked by prefix: no longer found, still listed, revoking again keeps the time.
	revoked, err := db.store.RevokeStaffKey(ctx, k.Prefix)
	if err != nil || revoked.ID != k.ID || revoked.RevokedAt == nil {
		t.Fatalf("revoke: %+v, %v", revoked, err)
	}
	if _, err := db.store.StaffKeyByHash(ctx, staffkey.Hash(secret)); !errors.Is(err, staffkey.ErrUnknown) {
		t.Fatalf("revoked key found: %v", err)
	}
	again, err := db.store.RevokeStaffKey(ctx, k.ID)
	if err != nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Fatalf("revoke again: %+v, %v", again, err)
	}
	list, err := db.store.ListStaffKeys(ctx)
	if err != nil || len(list) != 1 || list[0].RevokedAt == nil {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if _, err := db.store.RevokeStaffKey(ctx, "cfsk_zzzzzzzz"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

func TestStaffKeyScopesAreChecked(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	for name, scopes := range map[string][]string{"unknown scope": {"refunds", "admin"}, "no scope": {}} {
		secret, _ := staffkey.Generate()
		if _, err := db.store.CreateStaffKey(ctx, "Eve", secret, scopes); !store.IsIntegrityViolation(err) {
			t.Errorf("%s: %v, want an integrity violation", name, err)
		}
	}
	if n := db.count(t, `SELECT count(*) FROM staff_keys`); n != 0 {
		t.Fatalf("%d keys after refusals", n)
	}
	_, k := newStaffKey(t, db, "Grace", staffkey.Scopes()...)
	if len(k.Scopes) != 3 {
		t.Fatalf("scopes %v", k.Scopes)
	}
}

func TestRevokeByAPrefixTwoKeysShareIsRefused(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	_, a := newStaffKey(t, db, "Ada", staffkey.ScopeOps)
	_, b := newStaffKey(t, db, "Bob", staffkey.ScopeOps)
	db.exec(t, `UPDATE staff_keys SET prefix = $1 WHERE id = $2`, a.Prefix, b.ID)
	if _, err := db.store.RevokeStaffKey(ctx, a.Prefix); !errors.Is(err, store.ErrAmbiguousStaffKey) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if n := db.count(t, `SELECT count(*) FROM staff_keys WHERE revoked_at IS NOT NULL`); n != 0 {
		t.Fatalf("%d keys revoked by an ambiguous prefix", n)
	}
}

func TestStaffAuditRecordsEachActionOnce(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	_, k := newStaffKey(t, db, "Ada", staffkey.ScopeRefunds)
	id, err := db.store.BeginStaffAudit(ctx, store.StaffAction{StaffKeyID: k.ID, Action: "refund.create", Target: "order-1",
		RequestID: "req-1", Detail: map[string]any{"amount": 2000}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.store.FinishStaffAudit(ctx, id, store.AuditSucceeded, 201, map[string]any{"replayed": false}); err != nil {
		t.Fatal(err)
	}
	// The first outcome stays.
	if err := db.store.FinishStaffAudit(ctx, id, store.AuditFailed, 503, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finish twice: %v", err)
	}
	if _, err := db.store.BeginStaffAudit(ctx, store.StaffAction{StaffKeyID: k.ID, Action: "audit.read",
		Outcome: store.AuditForbidden, Status: 403}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.store.BeginStaffAudit(ctx, store.StaffAction{StaffKeyID: "00000000-0000-4000-8000-000000000000", Action: "x"}); !store.IsIntegrityViolation(err) {
		t.Fatalf("audit for an unknown key: %v", err)
	}

	all, err := db.store.StaffAudit(ctx, store.AuditFilter{Limit: 10})
	if err != nil || len(all) != 2 {
		t.Fatalf("audit: %+v, %v", all, err)
	}
	forbidden, refund := all[0], all[1]
	if forbidden.Outcome != store.AuditForbidden || forbidden.Status != 403 || forbidden.FinishedAt == nil {
		t.Fatalf("forbidden row %+v", forbidden)
	}
	if refund.StaffKeyID != k.ID || refund.StaffName != "Ada" || refund.Action != "refund.create" || refund.Target != "order-1" ||
		refund.RequestID != "req-1" || refund.Outcome != store.AuditSucceeded || refund.Status != 201 ||
		refund.Detail["amount"] != float64(2000) || refund.Detail["replayed"] != false || refund.FinishedAt == nil {
		t.Fatalf("refund row %+v", refund)
	}
	page, err := db.store.StaffAudit(ctx, store.AuditFilter{Before: forbidden.ID, Limit: 10})
	if err != nil || len(page) != 1 || page[0].ID != refund.ID {
		t.Fatalf("before %d: %+v, %v", forbidden.ID, page, err)
	}
	byTarget, err := db.store.StaffAudit(ctx, store.AuditFilter{Target: "order-1", StaffKeyID: k.ID, Limit: 10})
	if err != nil || len(byTarget) != 1 || byTarget[0].ID != refund.ID {
		t.Fatalf("by target: %+v, %v", byTarget, err)
	}
}
