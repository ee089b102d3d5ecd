package paypal

import (
	"fmt"
	"net/http"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// The admin API, for people running the development stack (curl) and for tests in other
// processes. Every answer is JSON.
//
//	GET    /__cartflow/state                          orders (with captures, refunds, disputes), events, faults, webhook
//	GET    /__cartflow/orders                         the orders, oldest first
//	POST   /__cartflow/orders                         {"amount":6200,"currency":"usd"}: an approved order, answered 201 with its "id";
//	                                                  also "value", "status", "custom_id", "issue", "pending", "declined" (see NewOrder)
//	GET    /__cartflow/orders/{id}                    one order
//	POST   /__cartflow/orders/{id}/approve            the buyer approves an order cartflow created (ApproveOrder)
//	POST   /__cartflow/orders/{id}/complete           complete its pending captures, as PayPal does after a review
//	GET    /__cartflow/captures                       the captures
//	GET    /__cartflow/refunds                        the refunds
//	POST   /__cartflow/captures/{id}/webhooks         {"event_type":"PAYMENT.CAPTURE.REFUNDED"}: send an event about it
//	GET    /__cartflow/events                         the events sent, with their deliveries
//	POST   /__cartflow/events/{id}/resend             deliver one again
//	POST   /__cartflow/webhook                        {"url":"…","webhook_id":"…"}: where events go (SetWebhook)
//	GET    /__cartflow/requests   DELETE to forget    the recorded API requests
//	GET    /__cartflow/faults     POST a Fault, DELETE the registered faults
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := kit.AdminPath(r)
	route := r.Method + " " + path
	listings := kit.Listings{
		"/state": func() any {
			return map[string]any{"orders": s.Orders(), "events": s.Events(), "faults": s.Faults(),
				"webhook_url": s.WebhookURL(), "webhook_id": s.WebhookID()}
		},
		"/orders":   func() any { return s.Orders() },
		"/captures": func() any { return s.Captures() },
		"/refunds":  func() any { return s.Refunds() },
		"/events":   func() any { return s.Events() },
	}
	if kit.ServeRecorded(w, route, s) || listings.Serve(w, route) {
		return
	}
	switch route {
	case "POST /orders":
		var n NewOrder
		if !kit.ReadJSON(w, r, &n, "body") {
			return
		}
		o, err := s.AddOrder(n)
		if err != nil {
			writeError(w, err)
			return
		}
		kit.WriteJSON(w, http.StatusCreated, o)
	case "POST /webhook":
		var body struct {
			URL       string `json:"url"`
			WebhookID string `json:"webhook_id"`
		}
		if !kit.ReadJSON(w, r, &body, "body") {
			return
		}
		s.SetWebhook(body.URL, body.WebhookID)
		kit.WriteJSON(w, http.StatusOK, map[string]string{"webhook_url": body.URL, "webhook_id": body.WebhookID})
	case "POST /faults":
		var f Fault
		if !kit.ReadJSON(w, r, &f, "body") {
			return
		}
		if err := s.AddFault(f); err != nil {
			kit.WriteError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		kit.WriteJSON(w, http.StatusCreated, f)
	default:
		if !sent.ServeResend(w, r, path, "/events/", s.ResendWebhook) {
			s.serveAdminObject(w, r, path)
		}
	}
}

// serveAdminObject answers the admin endpoints about one order or capture.
func (s *Server) serveAdminObject(w http.ResponseWriter, r *http.Request, path string) {
	switch {
	case r.Method == http.MethodGet && kit.PathSegment(path, "/orders/", "") != "":
		o, ok := s.Order(kit.PathSegment(path, "/orders/", ""))
		if !ok {
			writeError(w, fmt.Errorf("%w: order %s", ErrNotFound, kit.PathSegment(path, "/orders/", "")))
			return
		}
		kit.WriteJSON(w, http.StatusOK, o)
	case r.Method == http.MethodPost && kit.PathSegment(path, "/orders/", "/approve") != "":
		o, err := s.ApproveOrder(kit.PathSegment(path, "/orders/", "/approve"))
		if err != nil {
			writeError(w, err)
			return
		}
		kit.WriteJSON(w, http.StatusOK, o)
	case r.Method == http.MethodPost && kit.PathSegment(path, "/orders/", "/complete") != "":
		id := kit.PathSegment(path, "/orders/", "/complete")
		if err := s.CompleteCaptures(id); err != nil {
			writeError(w, err)
			return
		}
		o, _ := s.Order(id)
		kit.WriteJSON(w, http.StatusOK, o)
	case r.Method == http.MethodPost && kit.PathSegment(path, "/captures/", "/webhooks") != "":
		var body struct {
			EventType string `json:"event_type"`
		}
		if !kit.ReadJSON(w, r, &body, "body") {
			return
		}
		ev, err := s.SendWebhook(r.Context(), body.EventType, kit.PathSegment(path, "/captures/", "/webhooks"))
		sent.Write(w, ev, err)
	default:
		kit.WriteError(w, http.StatusNotFound, "unknown admin endpoint")
	}
}

// sent answers the events that SendWebhook and ResendWebhook return.
var sent = kit.Sent[Event]{ID: func(ev Event) string { return ev.ID }, Statuses: errorStatuses}

// errorStatuses map the Go API's errors onto the admin API's statuses.
var errorStatuses = []kit.ErrorStatus{
	{Err: ErrNotFound, Status: http.StatusNotFound},
	{Err: ErrInvalidState, Status: http.StatusConflict}, {Err: ErrNoWebhook, Status: http.StatusConflict},
	{Err: ErrInvalidOrder, Status: http.StatusUnprocessableEntity}, {Err: ErrUnknownEventType, Status: http.StatusUnprocessableEntity},
}

func writeError(w http.ResponseWriter, err error) { kit.WriteErrorFor(w, err, errorStatuses) }
