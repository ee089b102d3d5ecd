package kit

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers the admin API's error shape, {"error":"…"}, with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}

// DecodeJSON decodes an admin request's JSON body into v, refusing unknown fields so that a
// misspelt one is noticed rather than ignored.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// ReadJSON decodes an admin request's JSON body into v as DecodeJSON does. When the body does
// not fit it answers 400 ("invalid <what>: …") and reports false.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any, what string) bool {
	if err := DecodeJSON(w, r, v); err != nil {
		WriteError(w, http.StatusBadRequest, "invalid "+what+": "+err.Error())
		return false
	}
	return true
}

// AdminPath is the admin request's path below AdminPrefix, with its leading slash ("/faults").
func AdminPath(r *http.Request) string {
	return strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(AdminPrefix, "/"))
}

// Recorded is what every double records and injects, which its admin API serves the same way:
// its recorded requests of type R and its faults of type F. Adding a fault is left to the
// double, which knows how to validate one.
type Recorded[R, F any] interface {
	Requests() []R
	ClearRequests()
	Faults() []F
	ClearFaults()
}

// ServeRecorded answers GET and DELETE of /requests and /faults from d; it reports false for
// any other route (method, a space and the AdminPath), which the double then serves itself.
func ServeRecorded[R, F any](w http.ResponseWriter, route string, d Recorded[R, F]) bool {
	switch route {
	case "GET /requests":
		WriteJSON(w, http.StatusOK, d.Requests())
	case "DELETE /requests":
		d.ClearRequests()
		w.WriteHeader(http.StatusNoContent)
	case "GET /faults":
		WriteJSON(w, http.StatusOK, d.Faults())
	case "DELETE /faults":
		d.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	default:
		return false
	}
	return true
}

// Listings are admin endpoints that answer a GET of their AdminPath ("/orders") with what their
// function returns, as JSON.
type Listings map[string]func() any

// Serve answers route (method, a space and the AdminPath) when it is the GET of one of the
// listings, and reports whether it did.
func (ls Listings) Serve(w http.ResponseWriter, route string) bool {
	path, ok := strings.CutPrefix(route, http.MethodGet+" ")
	list := ls[path]
	if !ok || list == nil {
		return false
	}
	WriteJSON(w, http.StatusOK, list())
	return true
}

// ErrorStatus pairs an error of a double's Go API with the HTTP status its admin API answers
// for it.
type ErrorStatus struct {
	Err    error
	Status int
}

// WriteErrorFor answers err in the admin API's error shape, with the status of the first of
// statuses that err is (errors.Is), or 500 when it is none of them.
func WriteErrorFor(w http.ResponseWriter, err error, statuses []ErrorStatus) {
	status := http.StatusInternalServerError
	for _, es := range statuses {
		if errors.Is(err, es.Err) {
			status = es.Status
			break
		}
	}
	WriteError(w, status, err.Error())
}

// Sent is how a double's admin API answers the webhook messages of type M that its Go API's
// send and resend return.
type Sent[M any] struct {
	// ID is a message's id; empty for the zero message returned when none was made.
	ID func(M) string
	// Statuses map the errors that keep a message from being made onto HTTP statuses.
	Statuses []ErrorStatus
}

// Write answers m with 201 whenever it was made, whether or not its delivery succeeded, since
// its recorded deliveries say; otherwise it answers err, which kept it from being made.
func (s Sent[M]) Write(w http.ResponseWriter, m M, err error) {
	if s.ID(m) == "" {
		WriteErrorFor(w, err, s.Statuses)
		return
	}
	WriteJSON(w, http.StatusCreated, m)
}

// ServeResend answers POST <prefix>{id}/resend, path being the AdminPath, with what resend
// returns for message id; it reports false for any other request.
func (s Sent[M]) ServeResend(w http.ResponseWriter, r *http.Request, path, prefix string, resend func(context.Context, string) (M, error)) bool {
	id := PathSegment(path, prefix, "/resend")
	if r.Method != http.MethodPost || id == "" {
		return false
	}
	m, err := resend(r.Context(), id)
	s.Write(w, m, err)
	return true
}
