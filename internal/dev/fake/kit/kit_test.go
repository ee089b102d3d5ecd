package kit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

type fault struct {
	Op    string
	Count int
}

func take(fs *kit.Faults[fault], op string) (fault, bool) {
	return fs.Take(func(f fault) bool { return f.Op == "" || f.Op == op }, func(f *fault) *int { return &f.Count })
}

func TestFaultsApplyInOrderAndRunOut(t *testing.T) {
	t.Parallel()
	var fs kit.Faults[fault]
	fs.Add(fault{Op: "charge", Count: 2})
	fs.Add(fault{Op: "", Count: 0}) // every operation, until cleared

	for i, want := range []struct {
		op    string
		fault fault
	}{
		{"refund", fault{Op: ""}},
		{"charge", fault{Op: "charge", Count: 2}},
		{"charge", fault{Op: "charge", Count: 1}},
		{"charge", fault{Op: ""}}, // the first fault ran out
	} {
		got, ok := take(&fs, want.op)
		if !ok || got != want.fault {
			t.Errorf("take %d (%s) = %+v, %v; want %+v", i, want.op, got, ok, want.fault)
		}
	}
	if list := fs.List(); len(list) != 1 || list[0] != (fault{}) {
		t.Errorf("faults left = %+v, want only the unlimited one", list)
	}
	fs.Clear()
	if _, ok := take(&fs, "charge"); ok || len(fs.List()) != 0 {
		t.Errorf("a fault applied after Clear")
	}
}

func TestRecorderSnapshotsAreCopies(t *testing.T) {
	t.Parallel()
	type req struct{ Status int }
	var rc kit.Recorder[req]
	r := &req{}
	rc.Add(r)
	r.Status = 200 // a late answer completes the record
	snap := rc.Snapshot()
	snap[0].Status = 500
	if got := rc.Snapshot(); len(got) != 1 || got[0].Status != 200 {
		t.Errorf("snapshot = %+v, want the completed record, unchanged by the caller's copy", got)
	}
	rc.Clear()
	if got := rc.Snapshot(); len(got) != 0 {
		t.Errorf("after Clear: %+v", got)
	}
}

// recorded is a double's records for TestAdminHelpers, noting what was cleared.
type recorded struct{ cleared string }

func (r *recorded) Requests() []string { return []string{"r1"} }
func (r *recorded) ClearRequests()     { r.cleared += "requests " }
func (r *recorded) Faults() []fault    { return []fault{} }
func (r *recorded) ClearFaults()       { r.cleared += "faults" }

func TestAdminHelpers(t *testing.T) {
	t.Parallel()
	records := &recorded{}
	listings := kit.Listings{"/orders": func() any { return []string{"o1"} }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := r.Method + " " + kit.AdminPath(r)
		if kit.ServeRecorded(w, route, records) || listings.Serve(w, route) {
			return
		}
		if route == "POST /faults" {
			var f fault
			if kit.ReadJSON(w, r, &f, "fault") {
				kit.WriteJSON(w, http.StatusCreated, f)
			}
			return
		}
		kit.WriteError(w, http.StatusNotFound, "unknown admin endpoint")
	})
	for _, tc := range []struct {
		method, path, body string
		status             int
		answer             string
	}{
		{"GET", "/__cartflow/requests", "", 200, "[\"r1\"]\n"},
		{"GET", "/__cartflow/faults", "", 200, "[]\n"},
		{"DELETE", "/__cartflow/requests", "", 204, ""},
		{"DELETE", "/__cartflow/faults", "", 204, ""},
		{"POST", "/__cartflow/faults", `{"Op":"charge","Count":1}`, 201, "{\"Op\":\"charge\",\"Count\":1}\n"},
		{"POST", "/__cartflow/faults", `{"Opp":"charge"}`, 400, "{\"error\":\"invalid fault: json: unknown field \\\"Opp\\\"\"}\n"},
		{"GET", "/__cartflow/orders", "", 200, "[\"o1\"]\n"},
		{"DELETE", "/__cartflow/orders", "", 404, "{\"error\":\"unknown admin endpoint\"}\n"},
		{"GET", "/__cartflow/orders/o1", "", 404, "{\"error\":\"unknown admin endpoint\"}\n"},
		{"GET", "/__cartflow/nothing", "", 404, "{\"error\":\"unknown admin endpoint\"}\n"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
		if w.Code != tc.status || w.Body.String() != tc.answer {
			t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, w.Code, w.Body.String(), tc.status, tc.answer)
		}
		if w.Code != http.StatusNoContent && w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s answered Content-Type %q", tc.method, tc.path, w.Header().Get("Content-Type"))
		}
	}
	if records.cleared != "requests faults" {
		t.Errorf("cleared %q, want requests then faults", records.cleared)
	}
}

func TestPathSegment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ path, prefix, suffix, want string }{
		{"/orders/O-1/capture", "/orders/", "/capture", "O-1"},
		{"/orders/O-1", "/orders/", "", "O-1"},
		{"/orders//capture", "/orders/", "/capture", ""},
		{"/orders/a/b/capture", "/orders/", "/capture", ""},
		{"/captures/C-1/capture", "/orders/", "/capture", ""},
	} {
		if got := kit.PathSegment(tc.path, tc.prefix, tc.suffix); got != tc.want {
			t.Errorf("PathSegment(%q, %q, %q) = %q, want %q", tc.path, tc.prefix, tc.suffix, got, tc.want)
		}
	}
}

func TestSleepStopsWithTheContext(t *testing.T) {
	t.Parallel()
	if !kit.Sleep(context.Background(), 1) || !kit.Sleep(context.Background(), 0) {
		t.Errorf("a short sleep did not complete")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if kit.Sleep(ctx, 60_000) || time.Since(start) > 10*time.Second {
		t.Errorf("Sleep outlived its context")
	}
}

func TestSentMapsErrors(t *testing.T) {
	t.Parallel()
	errGone, errBusy := errors.New("gone"), errors.New("busy")
	sent := kit.Sent[map[string]string]{
		ID:       func(m map[string]string) string { return m["id"] },
		Statuses: []kit.ErrorStatus{{Err: errGone, Status: http.StatusNotFound}, {Err: errBusy, Status: http.StatusConflict}},
	}
	for _, tc := range []struct {
		made   bool
		err    error
		status int
		answer string
	}{
		{true, errBusy, http.StatusCreated, "{\"id\":\"m1\"}\n"}, // made, though its delivery failed
		{false, fmt.Errorf("wrapped: %w", errBusy), http.StatusConflict, "{\"error\":\"wrapped: busy\"}\n"},
		{false, errGone, http.StatusNotFound, "{\"error\":\"gone\"}\n"},
		{false, errors.New("other"), http.StatusInternalServerError, "{\"error\":\"other\"}\n"},
	} {
		msg := map[string]string{}
		if tc.made {
			msg["id"] = "m1"
		}
		w := httptest.NewRecorder()
		sent.Write(w, msg, tc.err)
		if w.Code != tc.status || w.Body.String() != tc.answer {
			t.Errorf("Write(%v, %v) = %d %q, want %d %q", tc.made, tc.err, w.Code, w.Body.String(), tc.status, tc.answer)
		}
	}

	resend := func(_ context.Context, id string) (map[string]string, error) {
		if id != "m1" {
			return nil, errGone
		}
		return map[string]string{"id": id}, errBusy
	}
	for _, tc := range []struct {
		method, path string
		served       bool
		status       int
	}{
		{"POST", "/messages/m1/resend", true, http.StatusCreated},
		{"POST", "/messages/m2/resend", true, http.StatusNotFound},
		{"GET", "/messages/m1/resend", false, 0},
		{"POST", "/messages/m1", false, 0},
		{"POST", "/other/m1/resend", false, 0},
	} {
		w := httptest.NewRecorder()
		served := sent.ServeResend(w, httptest.NewRequest(tc.method, "/__cartflow"+tc.path, nil), tc.path, "/messages/", resend)
		if served != tc.served || (served && w.Code != tc.status) {
			t.Errorf("ServeResend(%s %s) = %v, %d; want %v, %d", tc.method, tc.path, served, w.Code, tc.served, tc.status)
		}
	}
}
