package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/staffkey"
	"github.com/cartflow/cartflow/internal/store/db"
)

// ErrAmbiguousStaffKey is a display prefix that more than one key shares: name the key by id.
var ErrAmbiguousStaffKey = errors.New("more than one staff key has this prefix")

// CreateStaffKey records a new key for the staff member name with scopes, by its hash and
// display prefix; key itself is not stored. The database refuses an unknown scope.
func (s *Store) CreateStaffKey(ctx context.Context, name, key string, scopes []string) (staffkey.Key, error) {
	r, err := s.q.CreateStaffKey(ctx, db.CreateStaffKeyParams{
		Name: name, Prefix: staffkey.DisplayPrefix(key), KeyHash: staffkey.Hash(key), Scopes: scopes,
	})
	if err != nil {
		return staffkey.Key{}, fmt.Errorf("create staff key: %w", err)
	}
	return staffKeyFrom(r), nil
}

// StaffKeyByHash returns the active key with this hash; a revoked or unknown one is an error
// that errors.Is both ErrNotFound and staffkey.ErrUnknown.
func (s *Store) StaffKeyByHash(ctx context.Context, hash []byte) (staffkey.Key, error) {
	r, err := s.q.StaffKeyByHash(ctx, hash)
	if errors.Is(notFound(err), ErrNotFound) {
		return staffkey.Key{}, fmt.Errorf("staff key: %w (%w)", ErrNotFound, staffkey.ErrUnknown)
	}
	if err != nil {
		return staffkey.Key{}, fmt.Errorf("look up staff key: %w", err)
	}
	return staffKeyFrom(db.CreateStaffKeyRow(r)), nil
}

// TouchStaffKey records a use of the key, at most once a minute.
func (s *Store) TouchStaffKey(ctx context.Context, id string) error {
	if err := s.q.TouchStaffKey(ctx, id); err != nil {
		return fmt.Errorf("touch staff key %s: %w", id, err)
	}
	return nil
}

// ListStaffKeys lists every key, revoked ones included, newest first.
func (s *Store) ListStaffKeys(ctx context.Context) ([]staffkey.Key, error) {
	rows, err := s.q.ListStaffKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list staff keys: %w", err)
	}
	return convert(rows, func(r db.ListStaffKeysRow) staffkey.Key { return staffKeyFrom(db.CreateStaffKeyRow(r)) }), nil
}

// RevokeStaffKey revokes the key named by ref, its id or its display prefix, and returns it.
// A prefix two keys share is ErrAmbiguousStaffKey; no match is ErrNotFound. Revoking a revoked
// key again succeeds and keeps the first revocation time.
func (s *Store) RevokeStaffKey(ctx context.Context, ref string) (staffkey.Key, error) {
	var out staffkey.Key
	err := s.inTx(ctx, func(q *db.Queries) error {
		rows, err := q.StaffKeysByRef(ctx, ref)
		switch {
		case err != nil:
			return fmt.Errorf("find staff key: %w", err)
		case len(rows) == 0:
			return fmt.Errorf("staff key %q: %w", ref, ErrNotFound)
		case len(rows) > 1:
			return fmt.Errorf("staff key %q: %w", ref, ErrAmbiguousStaffKey)
		}
		r, err := q.RevokeStaffKey(ctx, rows[0].ID)
		if err != nil {
			return fmt.Errorf("revoke staff key: %w", err)
		}
		out = staffKeyFrom(db.CreateStaffKeyRow(r))
		return nil
	})
	return out, err
}

func staffKeyFrom(r db.CreateStaffKeyRow) staffkey.Key {
	return staffkey.Key{
		ID: r.ID, Name: r.Name, Prefix: r.Prefix, Scopes: r.Scopes, CreatedAt: r.CreatedAt,
		RevokedAt: r.RevokedAt, LastUsedAt: r.LastUsedAt,
	}
}

// The outcomes of an audited staff action.
const (
	// AuditAttempted is an action recorded before it acts, whose outcome is not recorded yet.
	AuditAttempted = "attempted"
	// AuditSucceeded is an action that did what was asked (2xx).
	AuditSucceeded = "succeeded"
	// AuditPending is an action still under way when the answer went out (202).
	AuditPending = "pending"
	// AuditRefused is an action refused for its request (a 4xx: an unknown order, too much).
	AuditRefused = "refused"
	// AuditForbidden is a known key without the action's scope (403).
	AuditForbidden = "forbidden"
	// AuditFailed is an action that failed on our side (5xx).
	AuditFailed = "failed"
)

// StaffAction is one audit row: which key did what to what, and how it ended.
type StaffAction struct {
	ID         int64          `json:"id"`
	StaffKeyID string         `json:"staff_key_id"`
	StaffName  string         `json:"staff_name,omitempty"`
	KeyPrefix  string         `json:"key_prefix,omitempty"`
	Action     string         `json:"action"`
	Target     string         `json:"target,omitempty"`
	RequestID  string         `json:"request_id,omitempty"`
	Outcome    string         `json:"outcome"`
	Status     int            `json:"status,omitempty"`
	Detail     map[string]any `json:"detail,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
	FinishedAt *time.Time     `json:"finished_at,omitempty"`
}

// BeginStaffAudit writes a's audit row and returns its id. An empty Outcome records the action
// as attempted, to be finished by FinishStaffAudit; any other is final, with a.Status.
func (s *Store) BeginStaffAudit(ctx context.Context, a StaffAction) (int64, error) {
	detail, err := auditDetail(a.Detail)
	if err != nil {
		return 0, err
	}
	p := db.BeginStaffAuditParams{
		StaffKeyID: a.StaffKeyID, Action: a.Action, Target: a.Target, RequestID: a.RequestID,
		Outcome: a.Outcome, Detail: detail,
	}
	if p.Outcome == "" {
		p.Outcome = AuditAttempted
	}
	if a.Status != 0 {
		st := int32(a.Status)
		p.Status = &st
	}
	id, err := s.q.BeginStaffAudit(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("write staff audit: %w", err)
	}
	return id, nil
}

// FinishStaffAudit records the outcome of an attempted action, adding detail to the row's.
// An action finished already is ErrNotFound: the first outcome stays.
func (s *Store) FinishStaffAudit(ctx context.Context, id int64, outcome string, status int, detail map[string]any) error {
	d, err := auditDetail(detail)
	if err != nil {
		return err
	}
	n, err := s.q.FinishStaffAudit(ctx, db.FinishStaffAuditParams{ID: id, Outcome: outcome, Status: int32(status), Detail: d})
	if err != nil {
		return fmt.Errorf("finish staff audit %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("staff audit %d is not attempted: %w", id, ErrNotFound)
	}
	return nil
}

// AuditFilter selects audit rows: newest first, Before an id (0: from the newest), for one
// key or one target when set, at most Limit.
type AuditFilter struct {
	Before     int64
	StaffKeyID string
	Target     string
	Limit      int
}

// StaffAudit lists the audit rows f selects.
func (s *Store) StaffAudit(ctx context.Context, f AuditFilter) ([]StaffAction, error) {
	rows, err := s.q.StaffAudit(ctx, db.StaffAuditParams{Before: f.Before, StaffKeyID: f.StaffKeyID, Target: f.Target, MaxRows: int32(f.Limit)})
	if err != nil {
		return nil, fmt.Errorf("list staff audit: %w", err)
	}
	out := make([]StaffAction, 0, len(rows))
	for _, r := range rows {
		a := StaffAction{
			ID: r.ID, StaffKeyID: r.StaffKeyID, StaffName: r.StaffName, KeyPrefix: r.Prefix, Action: r.Action,
			Target: r.Target, RequestID: r.RequestID, Outcome: r.Outcome, Status: int(deref(r.Status)),
			CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt,
		}
		if err := json.Unmarshal(r.Detail, &a.Detail); err != nil {
			return nil, fmt.Errorf("staff audit %d detail: %w", r.ID, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func auditDetail(d map[string]any) ([]byte, error) {
	if d == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("staff audit detail: %w", err)
	}
	return b, nil
}
