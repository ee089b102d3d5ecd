package kit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// hook is a webhook receiver that records its posts and answers them with statuses in turn,
// the last one for every post after; at /big it answers more than a delivery keeps.
type hook struct {
	url      string
	mu       sync.Mutex
	statuses []int
	posts    []post
}

type post struct{ body, sig, contentType string }

func newHook(t *testing.T, statuses ...int) *hook {
	t.Helper()
	h := &hook{statuses: statuses}
	h.url = kit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.posts = append(h.posts, post{string(body), r.Header.Get("Sig"), r.Header.Get("Content-Type")})
		status := h.statuses[min(len(h.posts), len(h.statuses))-1]
		w.WriteHeader(status)
		if r.URL.Path == "/big" {
			_, _ = w.Write([]byte(strings.Repeat("x", 2000)))
		}
	}))
	return h
}

func (h *hook) got() []post {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]post(nil), h.posts...)
}

var errNoURL, errGone = errors.New("no destination"), errors.New("gone")

// msg is a test message: the body its posts carry, and the message it was handed out as.
type msg struct {
	body string
	kit.Message[string]
}

// newTestOutbox returns an outbox whose posts carry the event's body and a signature that
// names the key and how many posts were built, so that a test sees each post built anew.
func newTestOutbox(pinned bool, retries ...time.Duration) *kit.Outbox[msg, string] {
	var mu sync.Mutex
	built := 0
	return kit.NewOutbox(kit.OutboxConfig[msg, string]{
		Name: "testmock", NoURL: errNoURL, Pinned: pinned, Retries: retries,
		NotFound: func(id string) error { return fmt.Errorf("%w: %s", errGone, id) },
		View: func(m kit.Message[msg]) msg {
			return msg{body: m.Event.body, Message: kit.Message[string]{ID: m.ID, Event: m.Event.body, URL: m.URL, Deliveries: m.Deliveries, Done: m.Done}}
		},
		Build: func(event msg, to kit.Target[string]) kit.Post {
			mu.Lock()
			defer mu.Unlock()
			built++
			return kit.Post{At: time.Date(2026, 1, 2, 3, 4, built, 0, time.UTC), URL: to.URL, TransmissionID: fmt.Sprint("t", built),
				ContentType: "application/json", Body: []byte(event.body), Header: http.Header{"Sig": {fmt.Sprint(to.Key, "/", built)}}}
		},
	})
}

func TestOutboxSendPostsToTheCurrentTarget(t *testing.T) {
	t.Parallel()
	first, second := newHook(t, http.StatusOK, http.StatusInternalServerError), newHook(t, http.StatusAccepted)
	first.url += "/big"
	o := newTestOutbox(false)
	o.SetTarget(first.url, "k1")
	o.Add("m1", msg{body: `{"id":1}`})
	if msgs := o.Messages(); len(msgs) != 1 || msgs[0].ID != "m1" || msgs[0].Deliveries == nil || len(msgs[0].Deliveries) != 0 ||
		msgs[0].Done || msgs[0].URL != first.url {
		t.Fatalf("a new message = %+v, want it listed with no deliveries", msgs)
	}

	m, err := o.Send(context.Background(), "m1")
	d := m.Deliveries
	if err != nil || len(d) != 1 || d[0].Status != http.StatusOK || len(d[0].Response) != 1024 || d[0].Error != "" ||
		d[0].URL != first.url || d[0].TransmissionID != "t1" || d[0].At.Second() != 1 || !m.Done || m.Event != `{"id":1}` {
		t.Fatalf("Send = %+v, %v; want one 200 with the first KiB of the answer", m, err)
	}
	m, err = o.Send(context.Background(), "m1")
	if d = m.Deliveries; err == nil || len(d) != 2 || d[1].Status != http.StatusInternalServerError ||
		d[1].Error != "testmock: the webhook receiver answered 500" || d[1].TransmissionID != "t2" {
		t.Fatalf("resend = %+v, %v; want the 500 recorded as the second delivery", m, err)
	}
	// A resend goes to the target of its time, signed with its key.
	o.SetTarget(second.url, "k2")
	if m, err = o.Send(context.Background(), "m1"); err != nil || m.Deliveries[2].URL != second.url || m.Deliveries[2].Status != http.StatusAccepted {
		t.Fatalf("resend after SetTarget = %+v, %v", m, err)
	}
	want := []post{{`{"id":1}`, "k1/1", "application/json"}, {`{"id":1}`, "k1/2", "application/json"}}
	if got := first.got(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first receiver got %q, want %q", got, want)
	}
	if got := second.got(); len(got) != 1 || got[0].sig != "k2/3" {
		t.Errorf("second receiver got %q, want the resend signed with k2", got)
	}

	// A copy is a copy.
	msgs := o.Messages()
	msgs[0].Deliveries[0].Status = 0
	if again := o.Messages(); len(again[0].Deliveries) != 3 || again[0].Deliveries[0].Status != http.StatusOK {
		t.Errorf("Messages after changing a copy = %+v", again)
	}

	if m, err := o.Send(context.Background(), "nosuch"); !errors.Is(err, errGone) || m.ID != "" {
		t.Errorf("Send of an unknown id = %+v, %v", m, err)
	}
	o.SetTarget("", "")
	if m, err := o.Send(context.Background(), "m1"); !errors.Is(err, errNoURL) || m.Deliveries[3].Error != errNoURL.Error() || m.Deliveries[3].Status != 0 {
		t.Errorf("Send without a URL = %+v, %v", m, err)
	}
	o.SetTarget("http://127.0.0.1:1/", "")
	if m, err := o.Send(context.Background(), "m1"); err == nil || !strings.HasPrefix(m.Deliveries[4].Error, "testmock: webhook delivery: ") ||
		m.Deliveries[4].Status != 0 {
		t.Errorf("Send to a closed port = %+v, %v", m, err)
	}
	o.Clear()
	if msgs := o.Messages(); len(msgs) != 0 {
		t.Errorf("Messages after Clear = %+v", msgs)
	}
}

// waitDone waits until the outbox's only message is done, and returns it.
func waitDone(t *testing.T, o *kit.Outbox[msg, string]) msg {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if msgs := o.Messages(); len(msgs) == 1 && msgs[0].Done {
			return msgs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages %+v, want one done", o.Messages())
		}
	}
}

func TestOutboxQueueRetriesToThePinnedTarget(t *testing.T) {
	t.Parallel()
	made, later := newHook(t, http.StatusServiceUnavailable, http.StatusOK), newHook(t, http.StatusOK)
	o := newTestOutbox(true, 0, 10*time.Millisecond, 10*time.Millisecond)
	o.SetTarget(made.url, "k1")
	o.Add("m1", msg{body: "event"})
	o.SetTarget(later.url, "k2")
	o.Queue("m1")
	o.Queue("nosuch")
	m := waitDone(t, o)
	if d := m.Deliveries; len(d) != 2 || d[0].Status != http.StatusServiceUnavailable || d[0].Error == "" ||
		d[1].Status != http.StatusOK || d[1].Error != "" || m.URL != made.url {
		t.Fatalf("queued message = %+v, want delivered on the second attempt", m)
	}
	if got := made.got(); len(got) != 2 || got[0].sig != "k1/1" || got[1].sig != "k1/2" || len(later.got()) != 0 {
		t.Errorf("posts %q to the target the message was made under, %d to the later one; want both to the first, signed with its key",
			got, len(later.got()))
	}
}

func TestOutboxQueueGivesUp(t *testing.T) {
	t.Parallel()
	h := newHook(t, http.StatusServiceUnavailable)
	o := newTestOutbox(true, 0, time.Millisecond, time.Millisecond)
	o.SetTarget(h.url, "k")
	o.Add("m1", msg{body: "event"})
	o.Queue("m1")
	m := waitDone(t, o)
	time.Sleep(20 * time.Millisecond) // a fourth attempt would have come by now
	if d := o.Messages()[0].Deliveries; len(d) != 3 || d[2].Status != http.StatusServiceUnavailable || len(h.got()) != 3 {
		t.Errorf("deliveries %+v (%d posts), want three failed attempts and no more", d, len(h.got()))
	}
	if len(m.Deliveries) != 3 {
		t.Errorf("done after %d attempts, want 3", len(m.Deliveries))
	}
}
