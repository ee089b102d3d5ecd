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
	records := kit.Records{
		Requests: func() any { return s.Requests() }, ClearRequests: s.ClearRequests,
		Faults: func() any { return s.Faults() }, ClearFaults: s.ClearFaults,
	}
	if records.Serve(w, r.Method+" "+path) {
		return
	}
	switch r.Method + " " + path {
	case "GET /state":
		kit.WriteJSON(w, http.StatusOK, map[string]any{"orders": s.Orders(), "events": s.Events(), "faults": s.Faults(),
			"webhook_url": s.WebhookURL(), "webhook_id": s.WebhookID()})
	case "GET /orders":
		kit.WriteJSON(w, http.StatusOK, s.Orders())
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
	case "GET /captures":
		kit.WriteJSON(w, http.StatusOK, s.Captures())
	case "GET /refunds":
		kit.WriteJSON(w, http.StatusOK, s.Refunds())
	case "GET /events":
		kit.WriteJSON(w, http.StatusOK, s.Events())
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
		s.serveAdminObject(w, r, path)
	}
}

// serveAdminObject answers the admin endpoints about one order, capture or event.
func (s *Server) serveAdminObject(w http.ResponseWriter, r *http.Request, path string) {
	switch {
	case r.Method == http.MethodGet && kit.PathSegment(path, "/orders/", "") != "":
		o, ok := s.Order(kit.PathSegment(path, "/orders/", ""))
		if !ok {
			writeError(w, fmt.Errorf("%w: order %s", ErrNotFound, kit.PathSegment(path, "/orders/", "")))
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
		writeEvent(w, func() (Event, error) {
			return s.SendWebhook(r.Context(), body.EventType, kit.PathSegment(path, "/captures/", "/webhooks"))
		})
	case r.Method == http.MethodPost && kit.PathSegment(path, "/events/", "/resend") != "":
		writeEvent(w, func() (Event, error) {
			return s.ResendWebhook(r.Context(), kit.PathSegment(path, "/events/", "/resend"))
		})
	default:
		kit.WriteError(w, http.StatusNotFound, "unknown admin endpoint")
	}
}

// writeEvent answers with the event once it was made, 201 whether or not its delivery
// succeeded (the deliveries say), or with the error that kept it from being made.
func writeEvent(w http.ResponseWriter, send func() (Event, error)) {
	ev, err := send()
	kit.WriteSent(w, ev.ID != "", ev, err, errorStatuses)
}

// errorStatuses map the Go API's errors onto the admin API's statuses.
var errorStatuses = []kit.ErrorStatus{
	{Err: ErrNotFound, Status: http.StatusNotFound},
	{Err: ErrInvalidState, Status: http.StatusConflict}, {Err: ErrNoWebhook, Status: http.StatusConflict},
	{Err: ErrInvalidOrder, Status: http.StatusUnprocessableEntity}, {Err: ErrUnknownEventType, Status: http.StatusUnprocessableEntity},
}

func writeError(w http.ResponseWriter, err error) { kit.WriteErrorFor(w, err, errorStatuses) }
