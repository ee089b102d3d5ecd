package braintree

import (
	"encoding/json"
	"net/http"
	"time"

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
//	GET    /__cartflow/search_lag POST {"lag_ms": N}      how far the search lags behind writes; 0 turns it off
//	POST   /__cartflow/settle                             settle everything waiting, as the daily batch does
//	POST   /__cartflow/transactions/{legacy id}/settle    settle one transaction (or refund)
//	POST   /__cartflow/transactions/{legacy id}/webhooks  {"kind":"dispute_opened"}: send a notification about it
//	GET    /__cartflow/notifications                      the notifications sent, with their deliveries
//	POST   /__cartflow/notifications/{id}/resend          deliver one again, unchanged
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := kit.AdminPath(r)
	route := r.Method + " " + path
	listings := kit.Listings{
		"/state": func() any {
			return map[string]any{"transactions": s.Transactions(), "notifications": s.Notifications(), "faults": s.Faults(),
				"search_lag_ms": s.SearchLag().Milliseconds(), "webhook_url": s.WebhookURL()}
		},
		"/search_lag":    func() any { return searchLag{LagMS: s.SearchLag().Milliseconds()} },
		"/transactions":  func() any { return s.Transactions() },
		"/refunds":       func() any { return s.Refunds() },
		"/notifications": func() any { return s.Notifications() },
	}
	if kit.ServeRecorded(w, route, s) || listings.Serve(w, route) || sent.ServeResend(w, r, path, "/notifications/", s.ResendWebhook) {
		return
	}
	switch route {
	case "POST /faults":
		var f Fault
		if !kit.ReadJSON(w, r, &f, "fault") {
			return
		}
		s.AddFault(f)
		kit.WriteJSON(w, http.StatusCreated, f)
	case "POST /search_lag":
		var lag searchLag
		if !kit.ReadJSON(w, r, &lag, "search lag") {
			return
		}
		if lag.LagMS < 0 {
			kit.WriteError(w, http.StatusBadRequest, "lag_ms must be 0 (off) or a positive number of milliseconds")
			return
		}
		s.SetSearchLag(time.Duration(lag.LagMS) * time.Millisecond)
		kit.WriteJSON(w, http.StatusOK, lag)
	case "POST /settle":
		kit.WriteJSON(w, http.StatusOK, map[string]any{"settled": s.SettleAll()})
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
			n, err := s.SendWebhook(r.Context(), body.Kind, kit.PathSegment(path, "/transactions/", "/webhooks"))
			sent.Write(w, n, err)
		default:
			kit.WriteError(w, http.StatusNotFound, "unknown admin endpoint")
		}
	}
}

// searchLag is the admin API's view of SetSearchLag.
type searchLag struct {
	LagMS int64 `json:"lag_ms"`
}

// sent answers the notifications that SendWebhook and ResendWebhook return.
var sent = kit.Sent[Notification]{ID: func(n Notification) string { return n.ID }, Statuses: errorStatuses}

// errorStatuses map the Go API's errors onto the admin API's statuses.
var errorStatuses = []kit.ErrorStatus{
	{Err: ErrNotFound, Status: http.StatusNotFound},
	{Err: ErrInvalidState, Status: http.StatusConflict}, {Err: ErrNoWebhook, Status: http.StatusConflict},
	{Err: ErrUnknownKind, Status: http.StatusUnprocessableEntity},
}

func writeError(w http.ResponseWriter, err error) { kit.WriteErrorFor(w, err, errorStatuses) }
