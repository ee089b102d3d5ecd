package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memCounter is a Counter in memory, standing in for PostgreSQL's upsert.
type memCounter struct {
	mu  sync.Mutex
	n   map[string]int
	err error
}

func (m *memCounter) IncrementRateCounter(_ context.Context, bucket, key string, start time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, m.err
	}
	if m.n == nil {
		m.n = map[string]int{}
	}
	k := bucket + "|" + key + "|" + start.String()
	m.n[k]++
	return m.n[k], nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestSharedFixedWindow(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Date(2026, 1, 1, 10, 0, 20, 0, time.UTC)}
	s := NewShared(&memCounter{}, c.now)
	rule := Rule{Bucket: "checkout_ip", Limit: 3, Window: time.Minute}
	ctx := context.Background()
	for i := range 3 {
		d, err := s.Allow(ctx, rule, "k")
		if err != nil || !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("request %d: %+v, %v; want allowed with %d remaining", i+1, d, err, 2-i)
		}
		if d.Reset != 40*time.Second {
			t.Fatalf("reset %v, want the 40 s left in the window", d.Reset)
		}
	}
	d, _ := s.Allow(ctx, rule, "k")
	if d.Allowed || d.Remaining != 0 || d.RetryAfter != 40*time.Second {
		t.Fatalf("4th request: %+v; want refused, retry after 40s", d)
	}
	if d, _ := s.Allow(ctx, Rule{Bucket: "checkout_email", Limit: 3, Window: time.Minute}, "k"); !d.Allowed {
		t.Fatal("another bucket's count was shared")
	}
	if d, _ := s.Allow(ctx, rule, "other"); !d.Allowed {
		t.Fatal("another key's count was shared")
	}
	c.t = c.t.Add(40 * time.Second) // the next window
	if d, _ := s.Allow(ctx, rule, "k"); !d.Allowed || d.Remaining != 2 || d.Reset != time.Minute {
		t.Fatalf("next window: %+v; want a fresh count", d)
	}
}

func TestSharedCounterError(t *testing.T) {
	t.Parallel()
	down := errors.New("postgres down")
	s := NewShared(&memCounter{err: down}, nil)
	if _, err := s.Allow(context.Background(), Rule{Bucket: "b", Limit: 1, Window: time.Minute}, "k"); !errors.Is(err, down) {
		t.Fatalf("err %v, want the counter's", err)
	}
}

func TestLocalTokenBucket(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	l := NewLocal(Rule{Bucket: "reads", Limit: 2, Window: 2 * time.Second}, c.now) // 1 token/s
	if d := l.Allow("ip"); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("first: %+v", d)
	}
	if d := l.Allow("ip"); !d.Allowed || d.Remaining != 0 || d.Reset != 2*time.Second {
		t.Fatalf("second: %+v", d)
	}
	d := l.Allow("ip")
	if d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("third: %+v; want refused for one token's time", d)
	}
	if d := l.Allow("other-ip"); !d.Allowed {
		t.Fatal("another IP shares the bucket")
	}
	c.t = c.t.Add(500 * time.Millisecond)
	if d := l.Allow("ip"); d.Allowed || d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("half a token later: %+v", d)
	}
	c.t = c.t.Add(500 * time.Millisecond)
	if d := l.Allow("ip"); !d.Allowed {
		t.Fatalf("a token later: %+v", d)
	}
	// After a whole window the idle buckets are swept, and a new one starts full.
	c.t = c.t.Add(10 * time.Second)
	l.Allow("third-ip")
	l.mu.Lock()
	n := len(l.buckets)
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d buckets kept, want only the one just used", n)
	}
}

func TestHeadersValues(t *testing.T) {
	t.Parallel()
	if got := (Rule{Limit: 10, Window: 90 * time.Second}).Policy(); got != "10;w=90" {
		t.Fatalf("policy %q", got)
	}
	for d, want := range map[time.Duration]int{0: 1, 200 * time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2} {
		if got := Seconds(d); got != want {
			t.Errorf("Seconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestHasher(t *testing.T) {
	t.Parallel()
	h := NewHasher("k1")
	if h.Hash("email", " A@Example.com ") != h.Hash("email", "a@example.com") {
		t.Fatal("email case or spaces change the hash")
	}
	if h.Hash("ip", "1.2.3.4") == h.Hash("email", "1.2.3.4") {
		t.Fatal("kinds share hashes")
	}
	if h.Hash("ip", "1.2.3.4") == NewHasher("k2").Hash("ip", "1.2.3.4") {
		t.Fatal("the key does not change the hash")
	}
	if len(h.Hash("ip", "1.2.3.4")) != 64 {
		t.Fatal("not a hex SHA-256")
	}
}
