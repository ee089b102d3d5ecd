package paypalmock

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// adminPrefix is where the admin API lives, the same place as the other doubles'.
const adminPrefix = "/__cartflow/"

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
	path := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(adminPrefix, "/"))
	switch r.Method + " " + path {
	case "GET /state":
		writeJSON(w, http.StatusOK, map[string]any{"orders": s.Orders(), "events": s.Events(), "faults": s.Faults(),
			"webhook_url": s.WebhookURL(), "webhook_id": s.WebhookID()})
	case "GET /orders":
		writeJSON(w, http.StatusOK, s.Orders())
	case "POST /orders":
		var n NewOrder
		if !decode(w, r, &n) {
			return
		}
		o, err := s.AddOrder(n)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, o)
	case "GET /captures":
		writeJSON(w, http.StatusOK, s.Captures())
	case "GET /refunds":
		writeJSON(w, http.StatusOK, s.Refunds())
	case "GET /events":
		writeJSON(w, http.StatusOK, s.Events())
	case "POST /webhook":
		var body struct {
			URL       string `json:"url"`
			WebhookID string `json:"webhook_id"`
		}
		if !decode(w, r, &body) {
			return
		}
		s.SetWebhook(body.URL, body.WebhookID)
		writeJSON(w, http.StatusOK, map[string]string{"webhook_url": body.URL, "webhook_id": body.WebhookID})
	case "GET /requests":
		writeJSON(w, http.StatusOK, s.Requests())
	case "DELETE /requests":
		s.ClearRequests()
		w.WriteHeader(http.StatusNoContent)
	case "GET /faults":
		writeJSON(w, http.StatusOK, s.Faults())
	case "POST /faults":
		var f Fault
		if !decode(w, r, &f) {
			return
		}
		if err := s.AddFault(f); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusCreated, f)
	case "DELETE /faults":
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	default:
		s.serveAdminObject(w, r, path)
	}
}

// serveAdminObject answers the admin endpoints about one order, capture or event.
func (s *Server) serveAdminObject(w http.ResponseWriter, r *http.Request, path string) {
	switch {
	case r.Method == http.MethodGet && segment(path, "/orders/", "") != "":
		o, ok := s.Order(segment(path, "/orders/", ""))
		if !ok {
			writeError(w, fmt.Errorf("%w: order %s", ErrNotFound, segment(path, "/orders/", "")))
			return
		}
		writeJSON(w, http.StatusOK, o)
	case r.Method == http.MethodPost && segment(path, "/orders/", "/complete") != "":
		id := segment(path, "/orders/", "/complete")
		if err := s.CompleteCaptures(id); err != nil {
			writeError(w, err)
			return
		}
		o, _ := s.Order(id)
		writeJSON(w, http.StatusOK, o)
	case r.Method == http.MethodPost && segment(path, "/captures/", "/webhooks") != "":
		var body struct {
			EventType string `json:"event_type"`
		}
		if !decode(w, r, &body) {
			return
		}
		writeEvent(w, func() (Event, error) {
			return s.SendWebhook(r.Context(), body.EventType, segment(path, "/captures/", "/webhooks"))
		})
	case r.Method == http.MethodPost && segment(path, "/events/", "/resend") != "":
		writeEvent(w, func() (Event, error) {
			return s.ResendWebhook(r.Context(), segment(path, "/events/", "/resend"))
		})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown admin endpoint"})
	}
}

// decode reads a JSON body into v, refusing unknown fields so that a misspelt one is noticed;
// it answers 400 and reports false when the body does not fit.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid body: " + err.Error()})
		return false
	}
	return true
}

// writeEvent answers with the event once it was made, 201 whether or not its delivery
// succeeded (the deliveries say), or with the error that kept it from being made.
func writeEvent(w http.ResponseWriter, send func() (Event, error)) {
	ev, err := send()
	if ev.ID == "" {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ev)
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrInvalidState), errors.Is(err, ErrNoWebhook):
		status = http.StatusConflict
	case errors.Is(err, ErrInvalidOrder), errors.Is(err, ErrUnknownEventType):
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
