//go:build integration

package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestTheBFFsEdge: the real BFF serves readiness and metrics on its internal listener only,
// labels every answer, and allows the storefront's origin (STOREFRONT_URL's default) alone.
func TestTheBFFsEdge(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url  string
		want int
	}{
		{dev.APIURL + "/readyz", http.StatusNotFound},
		{dev.APIURL + "/metrics", http.StatusNotFound},
		{dev.APIURL + "/healthz", http.StatusOK},
		{dev.APIInternalURL + "/readyz", http.StatusOK},
		{dev.APIInternalURL + "/metrics", http.StatusOK},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s = %d (nosniff %q), want %d with nosniff", c.url, resp.StatusCode, resp.Header.Get("X-Content-Type-Options"), c.want)
		}
	}
	// The storefront's origin, its 127.0.0.1 twin (allowed outside production), and another site.
	twin := strings.Replace(dev.StorefrontURL, "//localhost:", "//127.0.0.1:", 1)
	for origin, allowed := range map[string]bool{dev.StorefrontURL: true, twin: true, "https://evil.example": false} {
		req, err := http.NewRequest(http.MethodOptions, dev.APIURL+"/api/v1/checkouts", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin") == origin; got != allowed {
			t.Errorf("preflight from %s: %d, ACAO %q; want allowed %v", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), allowed)
		}
	}
}
