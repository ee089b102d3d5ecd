package braintreemock

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// adminPrefix is where the admin API lives, the same place as the Stripe test-mode layer's.
const adminPrefix = "/__cartflow/"

// The admin API, for people running the development stack (curl) and for tests in other
// processes. Every answer is JSON.
//
//	GET    /__cartflow/state                              transactions, notifications, faults and the webhook URL
//	GET    /__cartflow/transactions                       the transactions, oldest first
//	GET    /__cartflow/refunds                            the refunds
//	GET    /__cartflow/requests   DELETE to forget them   the recorded GraphQL requests
//	GET    /__cartflow/faults     POST a Fault, DELETE    the registered faults
//	POST   /__cartflow/settle                             settle everything waiting, as the daily batch does
//	POST   /__cartflow/transactions/{legacy id}/settle    settle one transaction (or refund)
//	POST   /__cartflow/transactions/{legacy id}/webhooks  {"kind":"dispute_opened"}: send a notification about it
//	GET    /__cartflow/notifications                      the notifications sent, with their deliveries
//	POST   /__cartflow/notifications/{id}/resend          deliver one again, unchanged
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(adminPrefix, "/"))
	switch r.Method + " " + path {
	case "GET /state":
		writeJSON(w, http.StatusOK, map[string]any{
			"transactions": s.Transactions(), "notifications": s.Notifications(), "faults": s.Faults(), "webhook_url": s.WebhookURL(),
		})
	case "GET /transactions":
		writeJSON(w, http.StatusOK, s.Transactions())
	case "GET /refunds":
		writeJSON(w, http.StatusOK, s.Refunds())
	case "GET /requests":
		writeJSON(w, http.StatusOK, s.Requests())
	case "DELETE /requests":
		s.ClearRequests()
		w.WriteHeader(http.StatusNoContent)
	case "GET /faults":
		writeJSON(w, http.StatusOK, s.Faults())
	case "POST /faults":
		var f Fault
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid fault: " + err.Error()})
			return
		}
		s.AddFault(f)
		writeJSON(w, http.StatusCreated, f)
	case "DELETE /faults":
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case "POST /settle":
		writeJSON(w, http.StatusOK, map[string]any{"settled": s.SettleAll()})
	case "GET /notifications":
		writeJSON(w, http.StatusOK, s.Notifications())
	default:
		switch {
		case r.Method == http.MethodPost && pathID(path, "/transactions/", "/settle") != "":
			id := pathID(path, "/transactions/", "/settle")
			if err := s.Settle(id); err != nil {
				writeError(w, err)
				return
			}
			if tx, ok := s.Transaction(id); ok {
				writeJSON(w, http.StatusOK, tx)
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"settled": id})
		case r.Method == http.MethodPost && pathID(path, "/transactions/", "/webhooks") != "":
			var body struct {
				Kind string `json:"kind"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Kind == "" {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": `the body must be {"kind":"<notification kind>"}`})
				return
			}
			writeNotification(w, func() (Notification, error) {
				return s.SendWebhook(r.Context(), body.Kind, pathID(path, "/transactions/", "/webhooks"))
			})
		case r.Method == http.MethodPost && pathID(path, "/notifications/", "/resend") != "":
			writeNotification(w, func() (Notification, error) {
				return s.ResendWebhook(r.Context(), pathID(path, "/notifications/", "/resend"))
			})
		default:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown admin endpoint"})
		}
	}
}

// writeNotification answers with the notification once it was made, 201 whether or not its
// delivery succeeded (the deliveries say), or with the error that kept it from being made.
func writeNotification(w http.ResponseWriter, send func() (Notification, error)) {
	n, err := send()
	if n.ID == "" {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, n)
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrInvalidState), errors.Is(err, ErrNoWebhook):
		status = http.StatusConflict
	case errors.Is(err, ErrUnknownKind):
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// pathID returns the single path segment between prefix and suffix, or "".
func pathID(path, prefix, suffix string) string {
	id, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return ""
	}
	if id, ok = strings.CutSuffix(id, suffix); !ok || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
