package codec

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	uiOrigin = "http://localhost:8233"
	opsKey   = "cfsk_ops"
	// plainEncodingJSON is "json/plain" as protojson writes metadata bytes: seen only once decoded.
	plainEncodingJSON = "anNvbi9wbGFpbg=="
)

// testServer is a codec endpoint whose authorizer accepts opsKey alone and counts its calls.
func testServer(t *testing.T) (*httptest.Server, *Codec, *int) {
	t.Helper()
	c := mustNew(t, map[string][]byte{"a": key(1)}, "a")
	calls := 0
	auth := KeyAuthorizer(func(_ context.Context, key string) error {
		calls++
		if key != opsKey {
			return ErrUnauthorized
		}
		return nil
	})
	mux := http.NewServeMux()
	mux.Handle("/codec/", NewServer(c, auth, []string{uiOrigin, "http://127.0.0.1:8233"}, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, c, &calls
}

// encryptedBody is a /decode request body holding one payload that c encrypted.
func encryptedBody(t *testing.T, c *Codec) string {
	t.Helper()
	enc, err := c.Encode([]*commonpb.Payload{plainPayload(t)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func post(t *testing.T, url, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestDecodeRefusesWithoutCredentials(t *testing.T) {
	t.Parallel()
	srv, c, _ := testServer(t)
	body := encryptedBody(t, c)
	for name, h := range map[string]http.Header{
		"no credentials": {},
		"wrong bearer":   {"Authorization": {"Bearer nope"}},
		"wrong cookie":   {"Cookie": {CookieName + "=nope"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, got := post(t, srv.URL+"/codec/decode", body, h)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", resp.StatusCode)
			}
			var e struct{ Error struct{ Code string } }
			if err := json.Unmarshal([]byte(got), &e); err != nil || e.Error.Code != "unauthorized" {
				t.Errorf("body = %s, want a JSON error coded unauthorized", got)
			}
			if strings.Contains(got, plainEncodingJSON) {
				t.Errorf("a refused request was decoded: %s", got)
			}
		})
	}
	// Encoding is refused alike: it would let anyone forge payloads under cartflow's key.
	if resp, _ := post(t, srv.URL+"/codec/encode", `{"payloads":[]}`, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("encode without credentials: %d, want 401", resp.StatusCode)
	}
}

func TestDecodeWithCredentials(t *testing.T) {
	t.Parallel()
	srv, c, _ := testServer(t)
	for name, h := range map[string]http.Header{
		"bearer": {"Authorization": {"Bearer " + opsKey}},
		"cookie": {"Cookie": {CookieName + "=" + opsKey}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, got := post(t, srv.URL+"/codec/decode", encryptedBody(t, c), h)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d: %s", resp.StatusCode, got)
			}
			var out commonpb.Payloads
			if err := protojson.Unmarshal([]byte(got), &out); err != nil {
				t.Fatal(err)
			}
			if len(out.Payloads) != 1 || !strings.Contains(string(out.Payloads[0].Data), "ada@example.com") ||
				string(out.Payloads[0].Metadata["encoding"]) != "json/plain" {
				t.Fatalf("decoded = %s", got)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	srv, _, calls := testServer(t)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ok := preflight(uiOrigin)
	if ok.StatusCode != http.StatusNoContent || ok.Header.Get("Access-Control-Allow-Origin") != uiOrigin ||
		ok.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight from the UI: %d %v", ok.StatusCode, ok.Header)
	}
	for _, h := range []string{"Content-Type", "X-Namespace", "Authorization"} {
		if !strings.Contains(ok.Header.Get("Access-Control-Allow-Headers"), h) {
			t.Errorf("preflight does not allow header %s", h)
		}
	}
	if *calls != 0 {
		t.Errorf("a preflight consulted the authorizer %d times", *calls)
	}
	other := preflight("https://evil.example")
	if got := other.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("preflight from another origin got ACAO %q", got)
	}
	// The actual request from another origin gets no ACAO either, so its page cannot read it.
	resp, _ := post(t, srv.URL+"/codec/decode", `{"payloads":[]}`, http.Header{"Origin": {"https://evil.example"}, "Authorization": {"Bearer " + opsKey}})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("request from another origin got ACAO %q", got)
	}
	resp, _ = post(t, srv.URL+"/codec/decode", `{"payloads":[]}`, http.Header{"Origin": {uiOrigin}, "Authorization": {"Bearer " + opsKey}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != uiOrigin {
		t.Errorf("request from the UI: %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

func TestSignInSetsCookieThatDecodes(t *testing.T) {
	t.Parallel()
	srv, c, _ := testServer(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn := func(key string, origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/codec/sign-in", strings.NewReader(url.Values{"key": {key}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := signIn("nope", ""); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("a refused key: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if resp := signIn(opsKey, "https://evil.example"); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("a sign-in posted from another site: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp := signIn(opsKey, srv.URL)
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
		t.Fatalf("sign-in: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	cookie := resp.Cookies()[0]
	if cookie.Name != CookieName || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/codec/" {
		t.Errorf("cookie = %+v", cookie)
	}
	got, body := post(t, srv.URL+"/codec/decode", encryptedBody(t, c), http.Header{"Cookie": {cookie.String()}})
	if got.StatusCode != http.StatusOK || !strings.Contains(body, plainEncodingJSON) {
		t.Errorf("decode with the sign-in cookie: %d %s", got.StatusCode, body)
	}
}

func TestAuthorizerUnavailableIs503(t *testing.T) {
	t.Parallel()
	c := mustNew(t, map[string][]byte{"a": key(1)}, "a")
	s := NewServer(c, AuthorizerFunc(func(*http.Request) error { return errors.Join(ErrAuthorizerUnavailable, errors.New("db down")) }), nil, nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/codec/decode", strings.NewReader(`{"payloads":[]}`)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("status %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}
