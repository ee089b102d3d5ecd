package codec

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
)

// Authorizer decides whether a request to the codec endpoint comes from someone allowed to read
// payloads in clear. A refused request is answered 401 and nothing in it is decoded.
type Authorizer interface {
	Authorize(r *http.Request) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(r *http.Request) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(r *http.Request) error { return f(r) }

// ErrUnauthorized is what an Authorizer returns for a request without valid credentials.
var ErrUnauthorized = errors.New("codec: no valid credentials")

// ErrAuthorizerUnavailable is what an Authorizer wraps when it cannot check the credentials
// (its database is down): the caller gets 503 and may retry, rather than a 401.
var ErrAuthorizerUnavailable = errors.New("codec: credentials cannot be checked right now")

// RefuseAll refuses every request: the codec endpoint stays shut until a real Authorizer is wired.
var RefuseAll Authorizer = AuthorizerFunc(func(*http.Request) error { return ErrUnauthorized })

// CookieName is the cookie that /codec/sign-in sets, holding the staff key for the UI's requests.
const CookieName = "cartflow_codec"

// cookieLifetime bounds a sign-in; the key itself is checked again on every request.
const cookieLifetime = 12 * time.Hour

// maxBody bounds a request: a page of history's payloads, well above Temporal's 2 MB payload limit.
const maxBody = 16 << 20

// KeyAuthorizer reads the caller's key, from `Authorization: Bearer <key>` (the CLI's
// --codec-auth) or else from the cookie /codec/sign-in set (the Web UI), and lets check decide.
// A request with neither is refused without calling check.
func KeyAuthorizer(check func(ctx context.Context, key string) error) Authorizer {
	return AuthorizerFunc(func(r *http.Request) error {
		key := Credential(r)
		if key == "" {
			return ErrUnauthorized
		}
		return check(r.Context(), key)
	})
}

// Credential returns the key a request carries, from its bearer token or else its sign-in
// cookie, or "".
func Credential(r *http.Request) string {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

// Server is the codec endpoint of the Temporal Web UI and CLI, meant to be mounted under
// /codec/: POST /codec/decode and /codec/encode (the Temporal codec server protocol), and
// GET/POST /codec/sign-in, a form that sets the cookie the UI's requests then carry.
type Server struct {
	auth    Authorizer
	origins []string
	codec   http.Handler
	log     *slog.Logger
}

// NewServer serves c's codec to callers auth lets through, answering cross-origin requests from
// origins (the Web UI's, such as http://localhost:8233) only.
func NewServer(c *Codec, auth Authorizer, origins []string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{auth: auth, origins: origins, codec: converter.NewPayloadCodecHTTPHandler(c), log: log}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Origin")
	if s.cors(w, r) {
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/sign-in"):
		s.signIn(w, r)
	case strings.HasSuffix(r.URL.Path, "/sign-out"):
		s.signOut(w, r)
	case strings.HasSuffix(r.URL.Path, "/decode"), strings.HasSuffix(r.URL.Path, "/encode"):
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
			return
		}
		if err := s.auth.Authorize(r); err != nil {
			s.refuse(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		s.codec.ServeHTTP(w, r)
	default:
		writeJSONError(w, http.StatusNotFound, "not_found", "the codec endpoint serves /decode, /encode and /sign-in")
	}
}

// cors sets the CORS headers for an allowed origin and answers a preflight; it reports whether
// the request has been answered. Any other origin gets no Access-Control-Allow-Origin, so the
// browser keeps the answer from its page.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	allowed := origin != "" && slices.Contains(s.origins, origin)
	if allowed {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		// The UI's "Include cross-origin credentials" sends the sign-in cookie only if allowed here.
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	if !allowed {
		w.WriteHeader(http.StatusForbidden)
		return true
	}
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	// What the Web UI sends: its JSON body, the namespace, and with "pass access token" a bearer.
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization, Authorization-Extras")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrAuthorizerUnavailable) {
		s.log.WarnContext(r.Context(), "codec: credentials cannot be checked", "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "service_unavailable", "credentials cannot be checked right now; retry shortly")
		return
	}
	s.log.InfoContext(r.Context(), "codec: request refused", "path", r.URL.Path, "reason", err)
	w.Header().Set("WWW-Authenticate", `Bearer realm="cartflow codec"`)
	writeJSONError(w, http.StatusUnauthorized, "unauthorized", "a staff key with scope ops is required (Authorization: Bearer, or sign in at /codec/sign-in)")
}

var signInPage = template.Must(template.New("sign-in").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cartflow codec sign-in</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h1>cartflow codec</h1>
{{if .SignedIn}}<p><strong>Signed in.</strong> In the Temporal Web UI, open the Codec Server settings,
choose “Use my browser setting”, enter <code>{{.Endpoint}}</code> and tick “Include cross-origin
credentials”. Payloads then decode in the UI.</p>
<form method="post" action="sign-out"><button type="submit">Sign out</button></form>
{{else}}{{if .Refused}}<p style="color:#b00"><strong>That key was refused.</strong> It needs scope <code>ops</code>.</p>{{end}}
<p>Paste your staff key (scope <code>ops</code>) to read workflow payloads in the Temporal Web UI.
It is kept in an HttpOnly cookie for this endpoint only.</p>
<form method="post" action="sign-in">
<label>Staff key <input type="password" name="key" autocomplete="off" size="60" required></label>
<button type="submit">Sign in</button>
</form>{{end}}
</body></html>
`))

type signInView struct {
	SignedIn, Refused bool
	Endpoint          string
}

// signIn shows the form (GET) or checks the key and sets the cookie (POST). The key is checked
// through the same Authorizer as every decode, so the form accepts exactly what decoding does.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	endpoint := s.endpoint(r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.Method {
	case http.MethodGet:
		view := signInView{Endpoint: endpoint}
		if Credential(r) != "" {
			view.SignedIn = s.auth.Authorize(r) == nil
		}
		_ = signInPage.Execute(w, view)
	case http.MethodPost:
		if !sameOrigin(r) {
			writeJSONError(w, http.StatusForbidden, "origin_not_allowed", "sign in from the form this endpoint serves")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		key := strings.TrimSpace(r.PostFormValue("key"))
		check := r.Clone(r.Context())
		check.Header = r.Header.Clone()
		check.Header.Set("Authorization", "Bearer "+key)
		if err := s.auth.Authorize(check); key == "" || err != nil {
			if errors.Is(err, ErrAuthorizerUnavailable) {
				s.refuse(w, r, err)
				return
			}
			s.log.InfoContext(r.Context(), "codec: sign-in refused", "reason", err)
			w.WriteHeader(http.StatusUnauthorized)
			_ = signInPage.Execute(w, signInView{Refused: true, Endpoint: endpoint})
			return
		}
		http.SetCookie(w, s.cookie(r, key, int(cookieLifetime/time.Second)))
		_ = signInPage.Execute(w, signInView{SignedIn: true, Endpoint: endpoint})
	default:
		w.Header().Set("Allow", "GET, POST")
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or POST")
	}
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !sameOrigin(r) {
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "sign out with POST from the sign-in page")
		return
	}
	http.SetCookie(w, s.cookie(r, "", -1))
	http.Redirect(w, r, "sign-in", http.StatusSeeOther)
}

// cookie is HttpOnly (no page script reads the key) and SameSite=Strict: the UI on another port
// of the same host is same-site, so its fetches carry it, and no other site's do. It is Secure
// except on a loopback host, where browsers accept it over plain http.
func (s *Server) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: CookieName, Value: value, Path: prefix(r.URL.Path), MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || !loopback(r.Host),
	}
}

// endpoint is the codec endpoint's URL as this request reached it, for the UI's settings.
func (s *Server) endpoint(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + strings.TrimSuffix(prefix(r.URL.Path), "/")
}

// prefix is the path the codec endpoint is mounted at, with its trailing slash: /codec/.
func prefix(path string) string {
	i := strings.LastIndex(path, "/")
	return path[:i+1]
}

// sameOrigin refuses a form posted from another site (login CSRF); a browser always sends
// Origin on a POST, and a client that sends none is not a browser.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}
