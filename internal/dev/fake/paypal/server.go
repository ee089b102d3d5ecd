// Package paypal is a local double of PayPal's REST API for the development stack and the
// tests: PayPal's sandbox is on the internet, and cartflow's machines are not.
//
// It serves what cartflow's PayPal gateway and webhook verifier call, as PayPal documents them:
// OAuth 2.0 client credentials (POST /v1/oauth2/token with the app's id and secret in Basic
// authentication) and Bearer tokens on every other call; Orders v2 create, get and capture;
// Payments v2 refund of a capture; the Transaction Search API (GET /v1/reporting/transactions);
// and POST /v1/notifications/verify-webhook-signature. An order creation, capture or refund
// repeated with the same PayPal-Request-Id gets the first answer again and changes nothing, even
// after the order was captured, and amounts must carry exactly the currency's decimals.
//
// cartflow creates its orders server-side (POST /v2/checkout/orders, with a custom_id); the buyer
// then approves them in PayPal's window, which ApproveOrder, or POST
// /__cartflow/orders/{id}/approve, stands for. CreateApprovedOrder, or POST /__cartflow/orders,
// makes an order as a buyer's browser would with PayPal's JavaScript SDK, approved and ready to
// capture, which cartflow must refuse. An order can be scripted to have its captures refused
// with an issue (INSTRUMENT_DECLINED, …), held PENDING or DECLINED.
//
// For tests it records every request, injects faults (HTTP statuses, hangs, answers lost after
// the work was done, an order captured by someone else first) and sends PayPal's webhook events
// with the PAYPAL-TRANSMISSION-* headers. PayPal signs deliveries with its certificate; the double
// signs them with an HMAC under a secret of its own, and its verify endpoint checks that HMAC, so
// a delivery verifies exactly when PayPal's would: signed by the double, for that webhook id,
// with the event unchanged. The same controls are served as JSON under /__cartflow/.
package paypal

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// Errors of the Go methods; the admin API maps them onto HTTP statuses.
var (
	// ErrNotFound is returned for an order, capture or event the double does not hold.
	ErrNotFound = errors.New("paypalfake: no such object")
	// ErrInvalidState is returned when an object's status does not allow the change, such as
	// refunding a capture that is refunded in full.
	ErrInvalidState = errors.New("paypalfake: the status does not allow this")
	// ErrInvalidOrder is returned for an order that PayPal would not create: an unsupported
	// currency, an amount that is not positive or has too many decimals, an id in use.
	ErrInvalidOrder = errors.New("paypalfake: invalid order")
	// ErrNoWebhook is returned by SendWebhook before SetWebhook named a destination.
	ErrNoWebhook = errors.New("paypalfake: no webhook destination is set")
	// ErrUnknownEventType is returned by SendWebhook for an event type the double cannot make.
	ErrUnknownEventType = errors.New("paypalfake: unsupported event type")
)

// The operations of PayPal's API that the double serves, as recorded in Request.Operation and
// matched by Fault.Operation.
const (
	OpToken       = "token"
	OpCreateOrder = "create_order"
	OpGetOrder    = "get_order"
	OpCapture     = "capture"
	OpRefund      = "refund"
	OpVerify      = "verify_webhook_signature"
	// OpTransactions is the Transaction Search API, GET /v1/reporting/transactions.
	OpTransactions = "list_transactions"
)

var operations = []string{OpToken, OpCreateOrder, OpGetOrder, OpCapture, OpRefund, OpVerify, OpTransactions}

// Config configures a Server.
type Config struct {
	// ClientID and Secret are the REST app's credentials that the token endpoint accepts.
	ClientID, Secret string
	// WebhookSecret stands in for PayPal's signing certificate: webhook deliveries are signed
	// with it and the verify endpoint checks signatures against it. Empty makes a random one,
	// which is all a stack needs, since only the double itself ever checks the signatures.
	WebhookSecret string
	// Logger records what the double did: operations, statuses and PayPal ids, never
	// credentials, tokens or bodies. Nil logs nothing.
	Logger *slog.Logger
	// HTTPClient delivers webhooks; nil uses a client with a 10-second timeout.
	HTTPClient *http.Client
}

// Server is the PayPal double, an http.Handler: PayPal's REST API at its own paths, and the
// admin API under /__cartflow/. The zero value is not usable; call New.
type Server struct {
	clientID      string
	webhookSecret string
	log           *slog.Logger
	webhooks      *kit.Outbox[Event, string] // keyed with the webhook listener's id

	mu       sync.Mutex
	secret   string
	tokens   map[string]bool
	orders   []*order
	byID     map[string]*order
	captures map[string]*capture
	refunds  []*refund
	answers  map[string]answer     // by operation, resource and PayPal-Request-Id
	requests kit.Recorder[Request] // changes under mu, with the state its requests change
	faults   kit.Faults[Fault]
}

// New returns a Server with no orders.
func New(cfg Config) *Server {
	secret := cfg.WebhookSecret
	if secret == "" {
		secret = rand.Text()
	}
	return &Server{
		clientID: cfg.ClientID, secret: cfg.Secret, webhookSecret: secret,
		log: kit.Logger(cfg.Logger), webhooks: newOutbox(cfg, secret),
		tokens: map[string]bool{}, byID: map[string]*order{}, captures: map[string]*capture{}, answers: map[string]answer{},
	}
}

// SetSecret changes the client secret the token endpoint accepts, as rotating the app's secret
// in PayPal's dashboard does. Tokens issued before stay valid until RevokeTokens.
func (s *Server) SetSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secret = secret
}

// RevokeTokens makes every access token issued so far invalid, so that the next call with one
// is answered 401 and the client must fetch another.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Request is one request to PayPal's API, as recorded for tests. It keeps no credentials: not
// the Authorization header, and of a token request's form only the field names.
type Request struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	// Operation is one of the Op constants; empty for a path or method the double does not serve.
	Operation string `json:"operation,omitempty"`
	// Resource is the order or capture id in the path.
	Resource    string `json:"resource,omitempty"`
	Accept      string `json:"accept,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Prefer      string `json:"prefer,omitempty"`
	RequestID   string `json:"paypal_request_id,omitempty"`
	// Fields are the top-level fields of the body, sorted: a JSON object's keys, or a token
	// request's form fields.
	Fields []string `json:"fields,omitempty"`
	// Body is a JSON body as received; a token request's form is not kept.
	Body json.RawMessage `json:"body,omitempty"`
	// Authenticated is true when the request carried the app's credentials (token requests) or
	// a valid access token (every other request).
	Authenticated bool `json:"authenticated"`
	// Replayed is true when the answer was the one stored for an earlier request with the same
	// PayPal-Request-Id, and nothing changed.
	Replayed bool `json:"replayed,omitempty"`
	// Fault describes the injected fault that applied, if any.
	Fault string `json:"fault,omitempty"`
	// Executed is true when the operation ran, so that it may have changed the double's state.
	Executed bool `json:"executed"`
	// Status is the HTTP status answered; 0 when the client left before the answer.
	Status int `json:"status"`
	// Issue is PayPal's reason for an error answer: the first detail's issue, else the error's
	// name, or the OAuth error code of a refused token.
	Issue string `json:"issue,omitempty"`
}

// Fault makes matching requests misbehave. Faults apply to authenticated, well-formed
// requests, in the order they were added; the first that matches is used.
type Fault struct {
	// Operation is one of the Op constants; empty matches every operation.
	Operation string `json:"operation,omitempty"`
	// Resource is an order or capture id; empty matches any, so that tests sharing one double
	// can aim a fault at their own order.
	Resource string `json:"resource,omitempty"`
	// Count is how many matching requests the fault applies to; 0 applies it until cleared.
	Count int `json:"count,omitempty"`
	// Status answers this HTTP status with PayPal's error JSON instead of executing, as PayPal
	// does when it is overloaded (429, 503) or fails (500). The request changes nothing.
	Status int `json:"status,omitempty"`
	// DelayMS waits before executing. A delay longer than the client's timeout is a hang in
	// which nothing happens: a client that gives up first leaves the state untouched.
	DelayMS int `json:"delay_ms,omitempty"`
	// StatusAfter executes, then answers this HTTP status with PayPal's error JSON instead of
	// the result: the operation happened, but the client cannot know.
	StatusAfter int `json:"status_after,omitempty"`
	// DelayAfterMS executes, then waits before answering: a client with a shorter timeout never
	// learns the outcome.
	DelayAfterMS int `json:"delay_after_ms,omitempty"`
	// CaptureFirst, on a capture, has the order captured by someone else (the buyer's browser,
	// another of the shop's servers) just before the request is executed.
	CaptureFirst bool `json:"capture_first,omitempty"`
}

// describe is the fault as recorded on a Request.
func (f Fault) describe() string {
	var parts []string
	if f.Status != 0 {
		parts = append(parts, fmt.Sprintf("status %d", f.Status))
	}
	if f.DelayMS > 0 {
		parts = append(parts, "delay before")
	}
	if f.CaptureFirst {
		parts = append(parts, "captured first")
	}
	if f.StatusAfter != 0 {
		parts = append(parts, fmt.Sprintf("status %d after", f.StatusAfter))
	}
	if f.DelayAfterMS > 0 {
		parts = append(parts, "delay after")
	}
	return strings.Join(parts, ", ")
}

// validate refuses a fault that could never apply or that would answer something that is not an error.
func (f Fault) validate() error {
	if f.Operation != "" && !slices.Contains(operations, f.Operation) {
		return fmt.Errorf("unknown operation %q (want one of %s)", f.Operation, strings.Join(operations, ", "))
	}
	if f.Count < 0 || f.DelayMS < 0 || f.DelayAfterMS < 0 {
		return errors.New("count and delays cannot be negative")
	}
	for _, st := range []int{f.Status, f.StatusAfter} {
		if st != 0 && (st < 400 || st > 599) {
			return fmt.Errorf("status %d is not an HTTP error status", st)
		}
	}
	if f == (Fault{Operation: f.Operation, Resource: f.Resource, Count: f.Count}) {
		return errors.New("the fault does nothing")
	}
	return nil
}

// AddFault registers f after the faults already registered.
func (s *Server) AddFault(f Fault) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("paypalfake: %w", err)
	}
	s.faults.Add(f)
	return nil
}

// Faults returns the faults still registered.
func (s *Server) Faults() []Fault { return s.faults.List() }

// ClearFaults removes every registered fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Requests returns copies of the recorded requests, in the order they were recorded: a faulted
// request when its fault applies, one that executed then, others when they are answered.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.requests.Snapshot()
	for i := range out {
		out[i].Fields = slices.Clone(out[i].Fields)
	}
	return out
}

// ClearRequests forgets the recorded requests; orders and captures stay, as they would at PayPal.
func (s *Server) ClearRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests.Clear()
}

// takeFault returns the first fault matching the request's operation and resource and uses one
// of its count.
func (s *Server) takeFault(op, resource string) (Fault, bool) {
	return s.faults.Take(func(f Fault) bool {
		return (f.Operation == "" || f.Operation == op) && (f.Resource == "" || f.Resource == resource)
	}, func(f *Fault) *int { return &f.Count })
}

// answer is an HTTP answer of PayPal's API. minimal, when set, is the answer to a client that
// did not ask for the full representation.
type answer struct {
	status  int
	body    []byte
	minimal []byte
	issue   string
}

// route maps a request onto an operation and the id in its path; op is "" for anything else,
// and allowed then names the method the path would take.
func route(method, path string) (op, resource, allowed string) {
	var want string
	switch {
	case path == "/v2/checkout/orders":
		op, want = OpCreateOrder, http.MethodPost
	case path == "/v1/reporting/transactions":
		op, want = OpTransactions, http.MethodGet
	case path == "/v1/oauth2/token":
		op, want = OpToken, http.MethodPost
	case path == "/v1/notifications/verify-webhook-signature":
		op, want = OpVerify, http.MethodPost
	case kit.PathSegment(path, "/v2/checkout/orders/", "/capture") != "":
		op, resource, want = OpCapture, kit.PathSegment(path, "/v2/checkout/orders/", "/capture"), http.MethodPost
	case kit.PathSegment(path, "/v2/checkout/orders/", "") != "":
		op, resource, want = OpGetOrder, kit.PathSegment(path, "/v2/checkout/orders/", ""), http.MethodGet
	case kit.PathSegment(path, "/v2/payments/captures/", "/refund") != "":
		op, resource, want = OpRefund, kit.PathSegment(path, "/v2/payments/captures/", "/refund"), http.MethodPost
	default:
		return "", "", ""
	}
	if method != want {
		return "", "", want
	}
	return op, resource, ""
}

// ServeHTTP answers PayPal's API and, under /__cartflow/, the admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, kit.AdminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	op, resource, allowed := route(r.Method, r.URL.Path)
	rec := &Request{Time: time.Now().UTC(), Method: r.Method, Path: r.URL.Path, Operation: op, Resource: resource,
		Accept: r.Header.Get("Accept"), ContentType: r.Header.Get("Content-Type"), Prefer: r.Header.Get("Prefer"),
		RequestID: r.Header.Get("PayPal-Request-Id")}
	recorded := false
	defer func() {
		s.mu.Lock()
		if !recorded {
			s.requests.Add(rec)
		}
		log := []any{"operation", rec.Operation, "resource", rec.Resource, "status", rec.Status, "executed", rec.Executed,
			"replayed", rec.Replayed, "fault", rec.Fault, "issue", rec.Issue}
		s.mu.Unlock()
		s.log.Info("paypal request", log...)
	}()
	// A refusal is recorded before it is written, so that a client that got it finds it.
	send := func(a answer) {
		s.mu.Lock()
		rec.Status, rec.Issue = a.status, a.issue
		if !recorded {
			s.requests.Add(rec)
			recorded = true
		}
		s.mu.Unlock()
		write(w, a, rec.Prefer)
	}

	if op == "" {
		if allowed != "" {
			w.Header().Set("Allow", allowed)
			send(apiError(http.StatusMethodNotAllowed, "METHOD_NOT_SUPPORTED", "", "The server does not implement the requested HTTP method."))
			return
		}
		send(apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "", "The specified resource does not exist."))
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, kit.MaxBody))
	if err != nil {
		send(apiError(http.StatusBadRequest, "INVALID_REQUEST", "MALFORMED_REQUEST", "The request body could not be read."))
		return
	}

	var body map[string]json.RawMessage
	if op == OpToken {
		a, ok := s.authenticateApp(r, rec, raw)
		if !ok {
			send(a)
			return
		}
	} else {
		if !s.authenticateToken(r) {
			// PayPal's answer to a missing, expired or revoked token.
			send(oauthError(http.StatusUnauthorized, "invalid_token", "Token signature verification failed"))
			return
		}
		rec.Authenticated = true
		if op != OpGetOrder && op != OpTransactions {
			var a *answer
			if body, a = readJSON(rec, raw); a != nil {
				send(*a)
				return
			}
		}
	}

	f, faulted := s.takeFault(op, resource)
	if faulted {
		// A faulted request is recorded as the fault applies, so that a test finds a hang even
		// before the server notices that its client gave up.
		s.mu.Lock()
		rec.Fault = f.describe()
		s.requests.Add(rec)
		recorded = true
		s.mu.Unlock()
	}
	switch {
	case faulted && f.Status != 0:
		send(statusError(f.Status))
		return
	case faulted && !kit.Sleep(r.Context(), f.DelayMS):
		return // the client gave up during the hang; nothing happened
	}

	base := "http://" + r.Host
	s.mu.Lock()
	var a answer
	switch op {
	case OpToken:
		a = s.issueToken()
	case OpCreateOrder:
		a = s.createOrder(rec, body, base)
	case OpGetOrder:
		a = s.getOrder(resource, base)
	case OpTransactions:
		a = s.listTransactions(r.URL.Query())
	case OpCapture:
		a = s.capture(rec, body, resource, base, faulted && f.CaptureFirst)
	case OpRefund:
		a = s.refund(rec, body, resource, base)
	case OpVerify:
		a = s.verify(body)
	}
	rec.Executed = true
	// Recorded as soon as the state changed, so that a test sees the operation even while its
	// answer is held back.
	rec.Status, rec.Issue = a.status, a.issue
	if !recorded {
		s.requests.Add(rec)
		recorded = true
	}
	s.mu.Unlock()

	if faulted && f.StatusAfter != 0 {
		a = statusError(f.StatusAfter)
	}
	if faulted && !kit.Sleep(r.Context(), f.DelayAfterMS) {
		s.mu.Lock()
		rec.Status = 0 // the operation happened; only its answer is lost
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	rec.Status, rec.Issue = a.status, a.issue
	s.mu.Unlock()
	write(w, a, rec.Prefer)
}

// authenticateApp checks a token request: the app's credentials in Basic authentication and a
// client_credentials grant in a form body. It answers the refusal when the request fails.
func (s *Server) authenticateApp(r *http.Request, rec *Request, raw []byte) (answer, bool) {
	form, err := parseForm(rec.ContentType, raw)
	if err == nil {
		rec.Fields = slices.Sorted(maps.Keys(form))
	}
	user, pass, ok := r.BasicAuth()
	s.mu.Lock()
	secret := s.secret
	s.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.clientID)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(secret)) != 1 {
		return oauthError(http.StatusUnauthorized, "invalid_client", "Client Authentication failed"), false
	}
	rec.Authenticated = true
	switch grant := form["grant_type"]; {
	case err != nil || len(grant) == 0:
		return oauthError(http.StatusBadRequest, "invalid_request", "grant_type is a required parameter, in a form body"), false
	case len(grant) != 1 || grant[0] != "client_credentials":
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "Grant Type is NULL or not supported"), false
	}
	return answer{}, true
}

// parseForm reads a form body; anything but application/x-www-form-urlencoded is an error.
func parseForm(contentType string, raw []byte) (map[string][]string, error) {
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errors.New("not a form")
	}
	r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(string(raw)))
	r.Header.Set("Content-Type", contentType)
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

// authenticateToken reports whether the request carries an access token the double issued.
func (s *Server) authenticateToken(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	return ok && s.tokens[tok]
}

// issueToken answers a token request with a new access token; the caller holds s.mu.
func (s *Server) issueToken() answer {
	tok := "A21AA" + rand.Text() + rand.Text()
	s.tokens[tok] = true
	return jsonAnswer(http.StatusOK, map[string]any{
		"scope":        "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund",
		"access_token": tok, "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 32400,
		"nonce": time.Now().UTC().Format(time.RFC3339) + rand.Text(),
	})
}

// readJSON decodes a JSON object body and records its fields. It answers PayPal's refusal
// when the body is not JSON, or not an object.
func readJSON(rec *Request, raw []byte) (map[string]json.RawMessage, *answer) {
	if mt, _, err := mime.ParseMediaType(rec.ContentType); err != nil || mt != "application/json" {
		a := apiError(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "", "The request payload is not supported: send application/json.")
		return nil, &a
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		a := apiError(http.StatusBadRequest, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON", "The request JSON is not well formed.")
		return nil, &a
	}
	rec.Body = json.RawMessage(raw)
	rec.Fields = slices.Sorted(maps.Keys(body))
	return body, nil
}

// unknownField refuses a body field that PayPal's API does not define for the operation. PayPal
// is not always this strict; the double is, so that a misspelt field cannot pass unnoticed.
func unknownField(body map[string]json.RawMessage, allowed ...string) *answer {
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if !slices.Contains(allowed, k) {
			a := apiError(http.StatusBadRequest, "INVALID_REQUEST", "UNKNOWN_FIELD", fmt.Sprintf("The field %q is not defined for this request.", k))
			return &a
		}
	}
	return nil
}

// write sends a, in the minimal representation unless the client asked for the full one.
func write(w http.ResponseWriter, a answer, prefer string) {
	body := a.body
	if a.minimal != nil && !strings.Contains(prefer, "return=representation") {
		body = a.minimal
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Paypal-Debug-Id", strings.ToLower(rand.Text()[:13]))
	w.WriteHeader(a.status)
	_, _ = w.Write(body)
}

func jsonAnswer(status int, v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps and slices of strings and numbers are marshalled
	}
	return answer{status: status, body: b}
}

// apiError is PayPal's error JSON: a name, a message, and the issue in details when there is one.
func apiError(status int, name, issue, message string) answer {
	e := map[string]any{"name": name, "message": message, "debug_id": strings.ToLower(rand.Text()[:13])}
	if issue != "" {
		description := issueDescriptions[issue]
		if description == "" {
			description = "The double's " + issue + "."
		}
		e["details"] = []map[string]string{{"issue": issue, "description": description}}
		e["links"] = []map[string]string{{"href": "https://developer.paypal.com/docs/api/orders/v2/#error-" + issue,
			"rel": "information_link", "method": "GET"}}
	}
	a := jsonAnswer(status, e)
	a.issue = name
	if issue != "" {
		a.issue = issue
	}
	return a
}

// issueDescriptions are PayPal's own descriptions of the issues whose wording clients may show
// or log, as PayPal's Orders v2 error reference gives them.
var issueDescriptions = map[string]string{
	"ORDER_ALREADY_CAPTURED": "Order already captured.If 'intent=CAPTURE' only one capture per order is allowed.",
	"ORDER_NOT_APPROVED":     "Payer has not yet approved the Order for payment. Please redirect the payer to the 'rel':'approve' url returned as part of the HATEOAS links within the Create Order call or provide a valid payment_source in the request.",
}

// unprocessable is PayPal's 422 for a request it understood and refuses, with the issue.
func unprocessable(issue string) answer {
	return apiError(http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", issue, "The requested action could not be performed, semantically incorrect, or failed business validation.")
}

// oauthError is the OAuth endpoint's error JSON, which is not PayPal's usual shape.
func oauthError(status int, code, description string) answer {
	a := jsonAnswer(status, map[string]string{"error": code, "error_description": description})
	a.issue = code
	return a
}

// statusNames are PayPal's error names by HTTP status, for injected faults.
var statusNames = map[int]string{
	http.StatusBadRequest: "INVALID_REQUEST", http.StatusUnauthorized: "AUTHENTICATION_FAILURE",
	http.StatusForbidden: "NOT_AUTHORIZED", http.StatusNotFound: "RESOURCE_NOT_FOUND",
	http.StatusConflict: "RESOURCE_CONFLICT", http.StatusUnprocessableEntity: "UNPROCESSABLE_ENTITY",
	http.StatusTooManyRequests: "RATE_LIMIT_REACHED", http.StatusInternalServerError: "INTERNAL_SERVER_ERROR",
	http.StatusServiceUnavailable: "SERVICE_UNAVAILABLE",
}

// statusError is PayPal's error JSON for an injected status.
func statusError(status int) answer {
	name := statusNames[status]
	if name == "" {
		name = strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	}
	return apiError(status, name, "", "An injected fault: "+http.StatusText(status)+".")
}

// newID returns an id of n (at most 26) upper-case letters and digits, the shape of PayPal's
// order, capture and refund ids, random so that ids from a restarted double do not collide with
// ids kept in Postgres.
func newID(n int) string {
	return rand.Text()[:n]
}

// newUUID returns a random UUID, the shape of PayPal's transmission ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
