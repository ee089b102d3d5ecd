// Package stripe is a test double that sits in front of stripe-mock and
// adds what stripe-mock lacks: idempotency-key replay, Stripe's documented
// test-card outcomes, customers with saved cards whose outcome tests can
// change, 3-D Secure (payments that wait for the customer, who is played
// through Authenticate), canceling payments, signed webhook events, request
// recording and fault injection.
//
// stripe-mock still checks every request's shape; the proxy only rewrites
// answers stripe-mock accepted.
package stripe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// Request is one request the proxy answered, as recorded for tests.
type Request struct {
	Time           time.Time           `json:"time"`
	Method         string              `json:"method"`
	Path           string              `json:"path"`
	IdempotencyKey string              `json:"idempotency_key,omitempty"`
	Status         int                 `json:"status"` // 0 when the client left before an answer existed
	Replayed       bool                `json:"replayed"`
	Dropped        bool                `json:"dropped,omitempty"` // executed, but the connection was closed unanswered
	ObjectID       string              `json:"object_id,omitempty"`
	Params         map[string][]string `json:"params,omitempty"` // query and form, without card[...] fields
}

// Fault makes the next Count requests matching Method, PathPrefix and IdempotencyKey misbehave.
type Fault struct {
	Method     string `json:"method"`      // empty matches any method
	PathPrefix string `json:"path_prefix"` // e.g. "/v1/payment_intents"
	// IdempotencyKey, when set, matches only requests under that key, so that one call and its
	// retries fail while the others pass: with DropAfter and Count 2, a call runs, and its answer
	// and that of the transparent retry net/http makes on a reused connection are both lost.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	Count          int    `json:"count"`      // 0 applies until faults are cleared
	Status         int    `json:"status"`     // answer this status without executing
	ErrorCode      string `json:"error_code"` // with Status: an invalid_request_error with this code, e.g. parameter_unknown
	DelayMS        int    `json:"delay_ms"`   // wait before executing
	DelayAfterMS   int    `json:"delay_after_ms"`
	DropAfter      bool   `json:"drop_after"` // execute, then close the connection unanswered
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithLogger sets the logger; by default the proxy logs nothing.
func WithLogger(l *slog.Logger) Option { return func(p *Proxy) { p.log = l } }

// WithHTTPClient sets the client used to reach stripe-mock.
func WithHTTPClient(c *http.Client) Option { return func(p *Proxy) { p.client = c } }

// Proxy is an http.Handler emulating Stripe's test mode on top of stripe-mock.
type Proxy struct {
	upstream *url.URL
	client   *http.Client
	log      *slog.Logger

	faults kit.Faults[Fault] // locks itself: taking a fault needs no other state

	mu       sync.Mutex
	requests []Request
	keyLocks map[string]chan struct{}
	saved    map[string]savedResponse
	pms      map[string]*storedPaymentMethod // created ones; magic pm_card_* are looked up in magicPaymentMethods
	pmOrder  []string
	pis      map[string]*intent
	piOrder  []string
	cus      map[string]*storedCustomer
	cusOrder []string
	// searchLag is how long a written PaymentIntent stays out of search results (SetSearchLag).
	searchLag time.Duration

	webhooks *kit.Outbox[WebhookDelivery, string]
}

type response struct {
	status int
	header http.Header
	body   []byte
}

type savedResponse struct {
	fingerprint string
	res         *response
}

// New returns a Proxy that forwards to the stripe-mock at upstream (e.g. "http://127.0.0.1:12111").
func New(upstream string, opts ...Option) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("stripefake: invalid upstream %q", upstream)
	}
	p := &Proxy{
		upstream: u,
		client:   &http.Client{Timeout: 30 * time.Second},
		log:      slog.New(slog.DiscardHandler),
		keyLocks: map[string]chan struct{}{},
		saved:    map[string]savedResponse{},
		pms:      map[string]*storedPaymentMethod{},
		pis:      map[string]*intent{},
		cus:      map[string]*storedCustomer{},
	}
	for _, o := range opts {
		o(p)
	}
	p.webhooks = newOutbox(p.log)
	return p, nil
}

// Start serves a new Proxy on a free 127.0.0.1 port until stop is called or ctx ends.
func Start(ctx context.Context, upstream string, opts ...Option) (baseURL string, p *Proxy, stop func(), err error) {
	if p, err = New(upstream, opts...); err != nil {
		return "", nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	var once sync.Once
	stop = func() { once.Do(func() { _ = srv.Close() }) }
	context.AfterFunc(ctx, stop)
	return "http://" + ln.Addr().String(), p, stop, nil
}

// Requests returns a copy of the recorded requests, oldest first.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// ClearRequests forgets the recorded requests.
func (p *Proxy) ClearRequests() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = nil
}

// Reset clears recorded requests, webhook deliveries and faults, the search lag among them.
// Stored objects, idempotency keys and the webhook setting survive, as they would at Stripe;
// use a new Proxy for a blank account.
func (p *Proxy) Reset() {
	p.ClearRequests()
	p.faults.Clear()
	p.webhooks.Clear()
	p.SetSearchLag(0)
}

// ForgetIdempotencyKeys drops every saved idempotent answer, as Stripe does once a key is 24
// hours old: a request repeated under a forgotten key runs again as a new one. It returns how
// many keys were forgotten.
func (p *Proxy) ForgetIdempotencyKeys() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.saved)
	clear(p.saved)
	return n
}

// AddFault registers f; faults are tried in the order they were added.
func (p *Proxy) AddFault(f Fault) { p.faults.Add(f) }

// Faults returns the faults still registered.
func (p *Proxy) Faults() []Fault { return p.faults.List() }

// ClearFaults removes every registered fault.
func (p *Proxy) ClearFaults() { p.faults.Clear() }

// ServeHTTP answers admin requests under /__cartflow/ and proxies everything else.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, kit.AdminPrefix) {
		p.serveAdmin(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	params := r.URL.Query()
	if form, err := url.ParseQuery(string(body)); r.Method != http.MethodGet && err == nil {
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	key := ""
	if r.Method == http.MethodPost {
		key = r.Header.Get("Idempotency-Key")
	}
	rec := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, IdempotencyKey: key, Params: redact(params)}
	// A request is recorded before its answer is written, so that a client that got the answer
	// finds the request among Requests; one that got none (it left) is recorded on the way out.
	recorded := false
	record := func() {
		if !recorded {
			recorded = true
			p.record(rec)
		}
	}
	defer record()

	f, faulted := p.takeFault(r.Method, r.URL.Path, key)
	if faulted && f.Status != 0 {
		res := faultResponse(f.Status, f.ErrorCode)
		rec.Status = res.status
		record()
		writeResponse(w, res, key, false)
		return
	}
	if faulted && !kit.Sleep(r.Context(), f.DelayMS) {
		return
	}
	res, replayed := p.handle(r, body, params, key)
	if res == nil { // client left while waiting for the key
		return
	}
	rec.Status, rec.Replayed, rec.ObjectID = res.status, replayed, objectID(res.body)
	switch {
	case faulted && f.DropAfter:
		rec.Dropped = true
		record() // the client must find it once it sees the drop
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return
		}
		panic(http.ErrAbortHandler)
	case faulted && !kit.Sleep(r.Context(), f.DelayAfterMS):
		return // state is committed; only the answer is lost
	}
	record()
	writeResponse(w, res, key, replayed)
}

// handle applies Stripe's idempotency rules around execute.
func (p *Proxy) handle(r *http.Request, body []byte, params url.Values, key string) (*response, bool) {
	// Execution must finish even if the client leaves: a real charge does not
	// roll back because the caller hung up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	if key == "" {
		return p.execute(ctx, r, body, params), false
	}
	lock := p.keyLock(key)
	select {
	case lock <- struct{}{}:
		defer func() { <-lock }()
	case <-r.Context().Done():
		return nil, false
	}
	fp := r.Method + " " + r.URL.Path + "?" + params.Encode() // Encode sorts keys
	p.mu.Lock()
	s, seen := p.saved[key]
	p.mu.Unlock()
	switch {
	case seen && s.fingerprint != fp:
		return stripeError(http.StatusBadRequest, "idempotency_error", "", "", fmt.Sprintf(
			"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", key)), false
	case seen:
		return s.res, true
	}
	res := p.execute(ctx, r, body, params)
	// Like Stripe, keep only results of requests that ran: validation
	// failures and upstream trouble leave the key free for a retry.
	if res.status < 400 || res.status == http.StatusPaymentRequired {
		p.mu.Lock()
		p.saved[key] = savedResponse{fp, res}
		p.mu.Unlock()
	}
	return res, false
}

func (p *Proxy) keyLock(key string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.keyLocks[key]
	if !ok {
		l = make(chan struct{}, 1)
		p.keyLocks[key] = l
	}
	return l
}

// execute forwards to stripe-mock for the shape check, then emulates the
// endpoints whose stateless fixtures would mislead tests.
func (p *Proxy) execute(ctx context.Context, r *http.Request, body []byte, params url.Values) *response {
	up := p.forward(ctx, r, body)
	path := r.URL.Path
	var emulate func(*response, url.Values) *response
	switch {
	case r.Method == http.MethodPost && path == "/v1/payment_methods" && params.Has("card[token]"):
		emulate = p.createPaymentMethod
	case r.Method == http.MethodPost && path == "/v1/payment_intents":
		emulate = p.createPaymentIntent
	case r.Method == http.MethodGet && path == "/v1/payment_intents":
		emulate = p.listPaymentIntents
	case r.Method == http.MethodPost && kit.PathSegment(path, "/v1/payment_intents/", "/confirm") != "":
		emulate = func(up *response, form url.Values) *response {
			return p.confirmPaymentIntent(up, form, kit.PathSegment(path, "/v1/payment_intents/", "/confirm"))
		}
	case r.Method == http.MethodGet && path == "/v1/payment_intents/search":
		if up.status == http.StatusNotFound { // a stripe-mock without the search route
			up.status = http.StatusOK
		}
		emulate = p.searchPaymentIntents
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v1/payment_intents/") && strings.Count(path, "/") == 3:
		emulate = func(up *response, _ url.Values) *response {
			return p.getPaymentIntent(up, strings.TrimPrefix(path, "/v1/payment_intents/"))
		}
	case r.Method == http.MethodPost && kit.PathSegment(path, "/v1/payment_intents/", "/cancel") != "":
		emulate = func(up *response, form url.Values) *response {
			return p.cancelPaymentIntent(up, form, kit.PathSegment(path, "/v1/payment_intents/", "/cancel"))
		}
	case r.Method == http.MethodPost && path == "/v1/refunds":
		emulate = p.createRefund
	case r.Method == http.MethodPost && path == "/v1/customers":
		emulate = p.createCustomer
	case r.Method == http.MethodGet && kit.PathSegment(path, "/v1/customers/", "") != "" && path != "/v1/customers/search":
		emulate = func(up *response, _ url.Values) *response {
			return p.getCustomer(up, kit.PathSegment(path, "/v1/customers/", ""))
		}
	case r.Method == http.MethodPost && kit.PathSegment(path, "/v1/customers/", "") != "":
		emulate = func(up *response, form url.Values) *response {
			return p.updateCustomer(up, form, kit.PathSegment(path, "/v1/customers/", ""))
		}
	case r.Method == http.MethodGet && kit.PathSegment(path, "/v1/payment_methods/", "") != "":
		emulate = func(up *response, _ url.Values) *response {
			return p.getPaymentMethod(up, kit.PathSegment(path, "/v1/payment_methods/", ""))
		}
	case r.Method == http.MethodGet && kit.PathSegment(path, "/v1/tokens/", "") != "":
		emulate = func(up *response, _ url.Values) *response {
			return p.getToken(up, kit.PathSegment(path, "/v1/tokens/", ""))
		}
	case r.Method == http.MethodPost && kit.PathSegment(path, "/v1/payment_methods/", "/attach") != "":
		emulate = func(up *response, form url.Values) *response {
			return p.attachPaymentMethod(up, form, kit.PathSegment(path, "/v1/payment_methods/", "/attach"))
		}
	}
	if emulate == nil || up.status < 200 || up.status > 299 {
		return up
	}
	return emulate(up, params)
}

var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
	"Accept-Encoding"} // so the transport decompresses and we can read the JSON

func (p *Proxy) forward(ctx context.Context, r *http.Request, body []byte) *response {
	u := *p.upstream
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return stripeError(http.StatusBadGateway, "api_error", "", "", "stripefake: "+err.Error())
	}
	req.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	res, err := p.client.Do(req)
	if err != nil {
		p.log.Error("stripe-mock unreachable", "err", err)
		return stripeError(http.StatusBadGateway, "api_error", "", "", "stripefake: stripe-mock unreachable: "+err.Error())
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return stripeError(http.StatusBadGateway, "api_error", "", "", "stripefake: reading stripe-mock: "+err.Error())
	}
	h := res.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	return &response{status: res.StatusCode, header: h, body: b}
}

func (p *Proxy) takeFault(method, path, key string) (Fault, bool) {
	return p.faults.Take(func(f Fault) bool {
		return (f.Method == "" || strings.EqualFold(f.Method, method)) && strings.HasPrefix(path, f.PathPrefix) &&
			(f.IdempotencyKey == "" || f.IdempotencyKey == key)
	}, func(f *Fault) *int { return &f.Count })
}

func (p *Proxy) record(rec Request) {
	if rec.Method == "" {
		return
	}
	p.log.Info("stripe request", "method", rec.Method, "path", rec.Path, "status", rec.Status,
		"replayed", rec.Replayed, "dropped", rec.Dropped, "object", rec.ObjectID)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, rec)
}

func (p *Proxy) serveAdmin(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + kit.AdminPath(r)
	listings := kit.Listings{
		"/payment_intents": func() any { return p.PaymentIntents() },
		"/customers":       func() any { return p.Customers() },
		"/payment_methods": func() any { return p.PaymentMethods() },
		"/webhooks":        func() any { return p.WebhookDeliveries() },
	}
	if kit.ServeRecorded(w, route, p) || listings.Serve(w, route) {
		return
	}
	switch route {
	case "POST /faults":
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, "invalid fault: "+err.Error(), http.StatusBadRequest)
			return
		}
		p.AddFault(f)
		kit.WriteJSON(w, http.StatusCreated, f)
	case "POST /webhook":
		p.serveSetWebhook(w, r)
	case "DELETE /idempotency_keys":
		kit.WriteJSON(w, http.StatusOK, map[string]int{"forgotten": p.ForgetIdempotencyKeys()})
	case "POST /search_lag":
		p.serveSetSearchLag(w, r)
	default:
		if id := kit.PathSegment(r.URL.Path, "/__cartflow/payment_methods/", "/outcome"); r.Method == http.MethodPost && id != "" {
			p.serveSetCardOutcome(w, r, id)
			return
		}
		if id := kit.PathSegment(r.URL.Path, "/__cartflow/payment_intents/", "/authenticate"); r.Method == http.MethodPost && id != "" {
			p.serveAuthenticate(w, r, id)
			return
		}
		http.Error(w, "unknown admin endpoint", http.StatusNotFound)
	}
}

// readJSON decodes an admin request's body into v as kit.DecodeJSON does. When the body does
// not fit it answers 400 ("invalid <what>: …") in plain text, as this layer's admin API always
// has, unlike the other doubles' JSON errors, and reports false.
func readJSON(w http.ResponseWriter, r *http.Request, v any, what string) bool {
	if err := kit.DecodeJSON(w, r, v); err != nil {
		http.Error(w, "invalid "+what+": "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeResponse(w http.ResponseWriter, res *response, key string, replayed bool) {
	h := w.Header()
	maps.Copy(h, res.header)
	if key != "" && h.Get("Idempotency-Key") == "" {
		h.Set("Idempotency-Key", key)
	}
	if replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	h.Set("Content-Length", strconv.Itoa(len(res.body)))
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

// faultResponse is a fault's answer: Stripe's rate-limit error for 429, an invalid_request_error
// with code when one is given, and an api_error otherwise.
func faultResponse(status int, code string) *response {
	if code != "" {
		return stripeError(status, "invalid_request_error", code, faultParam,
			fmt.Sprintf("Invalid request (injected fault %s): %s", code, faultParam))
	}
	if status == http.StatusTooManyRequests {
		return stripeError(status, "invalid_request_error", "rate_limit", "",
			"Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.")
	}
	return stripeError(status, "api_error", "", "", "An unknown error occurred (injected fault).")
}

// faultParam is the parameter an injected invalid_request_error names.
const faultParam = "cartflow_injected_fault"

// stripeError builds Stripe's {"error":{...}} body; empty fields are omitted.
func stripeError(status int, typ, code, param, msg string) *response {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	return jsonResponse(status, nil, map[string]any{"error": e})
}

// jsonResponse answers v with base's headers (stripe-mock's Request-Id etc.) when given.
func jsonResponse(status int, base *response, v any) *response {
	b, err := json.Marshal(v)
	if err != nil {
		return stripeError(http.StatusInternalServerError, "api_error", "", "", "stripefake: "+err.Error())
	}
	return rawResponse(status, base, b)
}

func rawResponse(status int, base *response, body []byte) *response {
	h := http.Header{}
	if base != nil {
		h = base.header.Clone()
	} else {
		h.Set("Request-Id", newID("req_"))
	}
	h.Set("Content-Type", "application/json")
	return &response{status: status, header: h, body: body}
}

func objectID(body []byte) string {
	var v struct {
		ID    string `json:"id"`
		Error struct {
			PaymentIntent struct {
				ID string `json:"id"`
			} `json:"payment_intent"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.ID + v.Error.PaymentIntent.ID
}

// redact drops card fields so recordings can be logged and shared freely.
func redact(params url.Values) map[string][]string {
	out := map[string][]string{}
	for k, v := range params {
		if !strings.HasPrefix(k, "card[") && !strings.Contains(k, "[card][") {
			out[k] = slices.Clone(v)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func newID(prefix string) string { return prefix + rand.Text() }

var errNotObject = errors.New("stripe-mock answer is not a JSON object")

// decodeObject keeps numbers as json.Number so fixture values survive re-encoding exactly.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errNotObject
	}
	return m, nil
}
