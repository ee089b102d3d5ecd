package kit

import (
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

// ReadJSON decodes an admin request's JSON body into v, refusing unknown fields so that a
// misspelt one is noticed rather than ignored. When the body does not fit it answers 400
// ("invalid <what>: …") and reports false.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any, what string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		WriteError(w, http.StatusBadRequest, "invalid "+what+": "+err.Error())
		return false
	}
	return true
}

// AdminPath is the admin request's path below AdminPrefix, with its leading slash ("/faults").
func AdminPath(r *http.Request) string {
	return strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(AdminPrefix, "/"))
}

// Records are the admin endpoints that every double serves the same way: its recorded requests
// and its faults. Adding a fault is left to the double, which knows how to validate one.
type Records struct {
	Requests      func() any
	ClearRequests func()
	Faults        func() any
	ClearFaults   func()
}

// Serve answers GET and DELETE of /requests and /faults; it reports false for any other
// route (method, a space and the AdminPath), which the double then serves itself.
func (rs Records) Serve(w http.ResponseWriter, route string) bool {
	switch route {
	case "GET /requests":
		WriteJSON(w, http.StatusOK, rs.Requests())
	case "DELETE /requests":
		rs.ClearRequests()
		w.WriteHeader(http.StatusNoContent)
	case "GET /faults":
		WriteJSON(w, http.StatusOK, rs.Faults())
	case "DELETE /faults":
		rs.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	default:
		return false
	}
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

// WriteSent answers a webhook message that a double made (made is true) with 201 whether or
// not its delivery succeeded, since its recorded deliveries say; otherwise it answers err, which
// kept the message from being made.
func WriteSent(w http.ResponseWriter, made bool, msg any, err error, statuses []ErrorStatus) {
	if !made {
		WriteErrorFor(w, err, statuses)
		return
	}
	WriteJSON(w, http.StatusCreated, msg)
}
