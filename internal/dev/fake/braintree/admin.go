package braintree

import (
	"encoding/json"
	"net/http"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

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
	path := kit.AdminPath(r)
	records := kit.Records{
		Requests: func() any { return s.Requests() }, ClearRequests: s.ClearRequests,
		Faults: func() any { return s.Faults() }, ClearFaults: s.ClearFaults,
	}
	if records.Serve(w, r.Method+" "+path) {
		return
	}
	switch r.Method + " " + path {
	case "GET /state":
		kit.WriteJSON(w, http.StatusOK, map[string]any{
			"transactions": s.Transactions(), "notifications": s.Notifications(), "faults": s.Faults(), "webhook_url": s.WebhookURL(),
		})
	case "GET /transactions":
		kit.WriteJSON(w, http.StatusOK, s.Transactions())
	case "GET /refunds":
		kit.WriteJSON(w, http.StatusOK, s.Refunds())
	case "POST /faults":
		var f Fault
		if !kit.ReadJSON(w, r, &f, "fault") {
			return
		}
		s.AddFault(f)
		kit.WriteJSON(w, http.StatusCreated, f)
	case "POST /settle":
		kit.WriteJSON(w, http.StatusOK, map[string]any{"settled": s.SettleAll()})
	case "GET /notifications":
		kit.WriteJSON(w, http.StatusOK, s.Notifications())
	default:
		switch {
		case r.Method == http.MethodPost && kit.PathSegment(path, "/transactions/", "/settle") != "":
			id := kit.PathSegment(path, "/transactions/", "/settle")
			if err := s.Settle(id); err != nil {
				writeError(w, err)
				return
			}
			if tx, ok := s.Transaction(id); ok {
				kit.WriteJSON(w, http.StatusOK, tx)
				return
			}
			kit.WriteJSON(w, http.StatusOK, map[string]string{"settled": id})
		case r.Method == http.MethodPost && kit.PathSegment(path, "/transactions/", "/webhooks") != "":
			var body struct {
				Kind string `json:"kind"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Kind == "" {
				kit.WriteError(w, http.StatusBadRequest, `the body must be {"kind":"<notification kind>"}`)
				return
			}
			writeNotification(w, func() (Notification, error) {
				return s.SendWebhook(r.Context(), body.Kind, kit.PathSegment(path, "/transactions/", "/webhooks"))
			})
		case r.Method == http.MethodPost && kit.PathSegment(path, "/notifications/", "/resend") != "":
			writeNotification(w, func() (Notification, error) {
				return s.ResendWebhook(r.Context(), kit.PathSegment(path, "/notifications/", "/resend"))
			})
		default:
			kit.WriteError(w, http.StatusNotFound, "unknown admin endpoint")
		}
	}
}

// writeNotification answers with the notification once it was made, 201 whether or not its
// delivery succeeded (the deliveries say), or with the error that kept it from being made.
func writeNotification(w http.ResponseWriter, send func() (Notification, error)) {
	n, err := send()
	kit.WriteSent(w, n.ID != "", n, err, errorStatuses)
}

// errorStatuses map the Go API's errors onto the admin API's statuses.
var errorStatuses = []kit.ErrorStatus{
	{Err: ErrNotFound, Status: http.StatusNotFound},
	{Err: ErrInvalidState, Status: http.StatusConflict}, {Err: ErrNoWebhook, Status: http.StatusConflict},
	{Err: ErrUnknownKind, Status: http.StatusUnprocessableEntity},
}

func writeError(w http.ResponseWriter, err error) { kit.WriteErrorFor(w, err, errorStatuses) }
