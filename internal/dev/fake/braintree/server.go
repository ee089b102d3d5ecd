// Package braintree is a local double of Braintree's GraphQL API for the development stack
// and the tests: Braintree's sandbox is on the internet, and cartflow's machines are not.
//
// It answers the operations that cartflow's Braintree gateway sends (chargePaymentMethod,
// authorizePaymentMethod and captureTransaction, the transactions search, idsFromLegacyIds, node,
// refundTransaction, reverseTransaction, and ping)
// the way Braintree documents them: Basic authentication with the API key pair, a required
// Braintree-Version date, HTTP 200 with GraphQL errors that carry an errorClass and, for
// validation errors, Braintree's legacy code; the sandbox's test nonces (fake-valid-nonce
// succeeds, fake-processor-declined-visa-nonce declines with 2000, …) and single-use client
// nonces; authorizations that stay AUTHORIZED until they are captured, in full or in part but
// never beyond the authorized amount; transactions that stay submitted for settlement until they
// are settled on demand, and can be refunded once settled but only voided before.
//
// For tests it records every request, injects faults (HTTP statuses, GraphQL error classes, slow
// answers, a search that finds nothing), makes the search lag behind writes for a given time
// while reads by id stay immediate (SetSearchLag), and sends Braintree's signed webhook
// notifications. The same controls are served as JSON under /__cartflow/ for people running the
// development stack.
package braintree

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// Errors of the Go methods; the admin API maps them onto HTTP statuses.
var (
	// ErrNotFound is returned for a transaction, refund or notification the double does not hold.
	ErrNotFound = errors.New("braintreefake: no such object")
	// ErrInvalidState is returned when an object's status does not allow the change, such as
	// settling a voided transaction.
	ErrInvalidState = errors.New("braintreefake: the status does not allow this")
	// ErrNoWebhook is returned by SendWebhook before SetWebhook named a destination.
	ErrNoWebhook = errors.New("braintreefake: no webhook destination is set")
	// ErrUnknownKind is returned by SendWebhook for a notification kind the double cannot make.
	ErrUnknownKind = errors.New("braintreefake: unsupported notification kind")
)

// Config configures a Server.
type Config struct {
	// PublicKey and PrivateKey are the API key pair that requests must authenticate with.
	PublicKey, PrivateKey string
	// Currency is the merchant account's currency (ISO 4217, "USD" when empty). Braintree charges
	// in the merchant account's currency whatever the client meant, so a double in another
	// currency than the shop's shows what the gateway does about it.
	Currency string
	// Logger records what the double did: operations, statuses and transaction ids, never
	// nonces or keys. Nil logs nothing.
	Logger *slog.Logger
	// HTTPClient delivers webhooks; nil uses a client with a 10-second timeout.
	HTTPClient *http.Client
}

// Server is the Braintree double, an http.Handler: POST /graphql is Braintree's API and
// /__cartflow/ the admin API. The zero value is not usable; call New.
type Server struct {
	authorization string
	currency      string
	log           *slog.Logger
	webhooks      *kit.Outbox[Notification, keyPair]

	mu          sync.Mutex
	txs         []*transaction
	byLegacyID  map[string]*transaction
	refundsByID map[string]*refund
	consumed    map[string]bool       // single-use nonces already charged
	requests    kit.Recorder[Request] // changes under mu, with the state its requests change
	faults      kit.Faults[Fault]
	searchLag   time.Duration
}

// SetSearchLag makes the transactions search lag behind writes by lag, as Braintree's search
// index does: a transaction created or changed (captured, voided, refunded, settled) less than
// lag ago is not found by any search, while node reads it at once. Zero turns the lag off.
func (s *Server) SetSearchLag(lag time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.searchLag = max(lag, 0)
}

// SearchLag is the search lag that SetSearchLag set; zero when off.
func (s *Server) SearchLag() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.searchLag
}

// New returns a Server with no transactions.
func New(cfg Config) *Server {
	currency := strings.ToUpper(cfg.Currency)
	if currency == "" {
		currency = "USD"
	}
	return &Server{
		authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.PublicKey+":"+cfg.PrivateKey)),
		currency:      currency,
		log:           kit.Logger(cfg.Logger),
		webhooks:      newOutbox(cfg),
		byLegacyID:    map[string]*transaction{},
		refundsByID:   map[string]*refund{},
		consumed:      map[string]bool{},
	}
}

// Request is one request to the GraphQL endpoint, as recorded for tests. Variables hold what the
// client sent, payment-method nonces included: nonces are single-use tokens, not card data, and
// tests assert on them. They are never logged.
type Request struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	// Version and ContentType are the Braintree-Version and Content-Type headers.
	Version     string `json:"braintree_version,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// Query is the GraphQL document; Operation its operation's name ("" when anonymous) and
	// Field the root field that decided what the double did.
	Query     string         `json:"query,omitempty"`
	Operation string         `json:"operation,omitempty"`
	Field     string         `json:"field,omitempty"`
	Variables map[string]any `json:"variables,omitempty"`
	// Authenticated is true when the Authorization header carried the configured key pair.
	Authenticated bool `json:"authenticated"`
	// Fault describes the injected fault that applied, if any.
	Fault string `json:"fault,omitempty"`
	// Executed is true when the operation ran, so that it may have changed the double's state;
	// false for refused and faulted requests and for clients that left before it ran.
	Executed bool `json:"executed"`
	// Status is the HTTP status answered, 0 when the client left before the answer.
	Status int `json:"status"`
	// Errors lists the GraphQL errors answered, as "CLASS" or "CLASS:legacyCode".
	Errors []string `json:"errors,omitempty"`
}

// Fault makes matching GraphQL requests misbehave. Faults apply to authenticated, well-formed
// requests, in the order they were added; the first that matches is used.
type Fault struct {
	// Operation is a root field (chargePaymentMethod, transactions, refundTransaction, …) or an
	// operation's name (BraintreeCharge); empty matches every request.
	Operation string `json:"operation,omitempty"`
	// Count is how many matching requests the fault applies to; 0 applies it until cleared.
	Count int `json:"count,omitempty"`
	// Status answers this HTTP status with a plain-text body instead of executing, as a load
	// balancer in front of Braintree does.
	Status int `json:"status,omitempty"`
	// ErrorClass answers HTTP 200 with one GraphQL error of this class (INTERNAL,
	// SERVICE_AVAILABILITY, RESOURCE_LIMIT, VALIDATION, …) instead of executing.
	ErrorClass string `json:"error_class,omitempty"`
	// LegacyCode is the error's legacy code, such as 91506 for a VALIDATION error.
	LegacyCode string `json:"legacy_code,omitempty"`
	// Message is the error's message; a generic one when empty.
	Message string `json:"message,omitempty"`
	// DelayMS waits before executing. A delay longer than the client's timeout is a hang in
	// which nothing happens: a client that gives up first leaves the state untouched.
	DelayMS int `json:"delay_ms,omitempty"`
	// DelayAfterMS executes, then waits before answering: the operation happened, but a client
	// with a shorter timeout never learns its outcome.
	DelayAfterMS int `json:"delay_after_ms,omitempty"`
	// StaleSearch answers a transactions search with no results, as Braintree's search index
	// does until it catches up with a new transaction.
	StaleSearch bool `json:"stale_search,omitempty"`
}

// describe is the fault as recorded on a Request.
func (f Fault) describe() string {
	var parts []string
	if f.Status != 0 {
		parts = append(parts, "status "+http.StatusText(f.Status))
	}
	if f.ErrorClass != "" {
		parts = append(parts, "error "+f.ErrorClass)
	}
	if f.DelayMS > 0 {
		parts = append(parts, "delay before")
	}
	if f.DelayAfterMS > 0 {
		parts = append(parts, "delay after")
	}
	if f.StaleSearch {
		parts = append(parts, "stale search")
	}
	return strings.Join(parts, ", ")
}

// AddFault registers f after the faults already registered.
func (s *Server) AddFault(f Fault) { s.faults.Add(f) }

// Faults returns the faults still registered.
func (s *Server) Faults() []Fault { return s.faults.List() }

// ClearFaults removes every registered fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Requests returns copies of the recorded requests, oldest first: a faulted request is recorded
// when its fault applies, one that executed then, others as they are answered.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests.Snapshot()
}

// ClearRequests forgets the recorded requests; transactions stay, as they would at Braintree.
func (s *Server) ClearRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests.Clear()
}

// takeFault returns the first fault matching the operation, by root field or operation name,
// and uses one of its count.
func (s *Server) takeFault(field, name string) (Fault, bool) {
	return s.faults.Take(func(f Fault) bool {
		return f.Operation == "" || f.Operation == field || f.Operation == name
	}, func(f *Fault) *int { return &f.Count })
}

// record adds rec to the recorded requests; after that, rec changes only under s.mu.
func (s *Server) record(rec *Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests.Add(rec)
}

// versionPattern is the Braintree-Version header's shape: the date an integration was written against.
var versionPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// ServeHTTP answers the GraphQL API at /graphql and the admin API under /__cartflow/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, kit.AdminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	rec := &Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path,
		Version: r.Header.Get("Braintree-Version"), ContentType: r.Header.Get("Content-Type")}
	// recordOnce records rec the first time it is called: as a fault applies, as the operation
	// executes, as an answer is written, or on the way out, whichever comes first.
	recorded := false
	recordOnce := func() {
		if !recorded {
			recorded = true
			s.record(rec)
		}
	}
	defer func() {
		recordOnce()
		s.mu.Lock()
		status := rec.Status
		s.mu.Unlock()
		s.log.Info("braintree request", "operation", rec.Operation, "field", rec.Field, "status", status,
			"executed", rec.Executed, "fault", rec.Fault, "errors", strings.Join(rec.Errors, ","))
	}()
	// A request is recorded before its answer is written, so that a client that got the answer
	// finds the request among Requests.
	reply := func(status int, data any, errs ...gqlError) {
		s.mu.Lock()
		rec.Status = status
		for _, e := range errs {
			rec.Errors = append(rec.Errors, e.tag())
		}
		s.mu.Unlock()
		recordOnce()
		writeGraphQL(w, status, data, errs)
	}

	if r.URL.Path != "/graphql" {
		reply(http.StatusNotFound, nil, gqlError{Message: "Not found: Braintree's GraphQL API is at /graphql."})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(http.StatusMethodNotAllowed, nil, gqlError{Message: "GraphQL requests are POSTed."})
		return
	}
	if mt, _, err := mime.ParseMediaType(rec.ContentType); err != nil || mt != "application/json" {
		reply(http.StatusUnsupportedMediaType, nil, gqlError{Message: "The Content-Type must be application/json."})
		return
	}
	if !versionPattern.MatchString(rec.Version) {
		reply(http.StatusBadRequest, nil, gqlError{Message: "The Braintree-Version header is missing or is not a date (YYYY-MM-DD)."})
		return
	}
	var body struct {
		Query         string         `json:"query"`
		Variables     map[string]any `json:"variables"`
		OperationName string         `json:"operationName"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, kit.MaxBody)).Decode(&body); err != nil {
		reply(http.StatusBadRequest, nil, gqlError{Message: "The body is not a JSON GraphQL request."})
		return
	}
	rec.Query, rec.Variables = body.Query, body.Variables
	op, perr := parseOperation(body.Query, body.OperationName, body.Variables)
	rec.Operation, rec.Field = op.name, op.field
	// The credentials are checked once the request is understood, as Braintree's gateway does
	// behind its GraphQL layer: an authentication failure is a GraphQL error with HTTP 200.
	rec.Authenticated = subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(s.authorization)) == 1
	if !rec.Authenticated {
		reply(http.StatusOK, nil, gqlError{Class: "AUTHENTICATION", Message: "Authentication credentials are invalid."})
		return
	}
	if perr != nil {
		reply(http.StatusOK, nil, *perr)
		return
	}

	f, faulted := s.takeFault(op.field, op.name)
	if faulted {
		// Recorded as the fault applies, so that a test finds a hang even before the server
		// notices that its client gave up.
		rec.Fault = f.describe()
		recordOnce()
	}
	switch {
	case faulted && f.Status != 0:
		s.mu.Lock()
		rec.Status = f.Status
		s.mu.Unlock()
		http.Error(w, "upstream trouble (injected fault)", f.Status)
		return
	case faulted && f.ErrorClass != "":
		msg := f.Message
		if msg == "" {
			msg = "Something went wrong (injected fault)."
		}
		reply(http.StatusOK, map[string]any{op.field: nil}, gqlError{Class: f.ErrorClass, Code: f.LegacyCode, Message: msg, Path: op.field})
		return
	case faulted && !kit.Sleep(r.Context(), f.DelayMS):
		return // the client gave up during the hang; nothing happened
	}
	data, errs := s.execute(op, faulted && f.StaleSearch)
	s.mu.Lock()
	rec.Executed = true
	for _, e := range errs {
		rec.Errors = append(rec.Errors, e.tag())
	}
	s.mu.Unlock()
	// Recorded as soon as the state changed, so that a test sees the operation even while its
	// answer is held back.
	recordOnce()
	if faulted && !kit.Sleep(r.Context(), f.DelayAfterMS) {
		return // the operation happened; only its answer is lost
	}
	s.mu.Lock()
	rec.Status = http.StatusOK
	s.mu.Unlock()
	writeGraphQL(w, http.StatusOK, data, errs)
}

// gqlError is one entry of a GraphQL response's errors.
type gqlError struct {
	Class   string
	Code    string
	Message string
	Path    string
}

func (e gqlError) tag() string {
	tag := e.Class
	if tag == "" {
		tag = "GRAPHQL"
	}
	if e.Code != "" {
		tag += ":" + e.Code
	}
	return tag
}

func (e gqlError) json() map[string]any {
	out := map[string]any{"message": e.Message}
	ext := map[string]any{}
	if e.Class != "" {
		ext["errorClass"] = e.Class
	}
	if e.Code != "" {
		ext["legacyCode"] = e.Code
	}
	if len(ext) > 0 {
		out["extensions"] = ext
	}
	if e.Path != "" {
		out["path"] = []string{e.Path}
	}
	return out
}

// writeGraphQL writes a GraphQL response: data, errors when there are any, and the request id
// that Braintree puts in every response's extensions.
func writeGraphQL(w http.ResponseWriter, status int, data any, errs []gqlError) {
	body := map[string]any{"data": data, "extensions": map[string]any{"requestId": newID(16)}}
	if len(errs) > 0 {
		list := make([]map[string]any, len(errs))
		for i, e := range errs {
			list[i] = e.json()
		}
		body["errors"] = list
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// newID returns n (at most 26) random lower-case letters and digits, like Braintree's legacy ids.
func newID(n int) string {
	return strings.ToLower(rand.Text())[:n]
}
