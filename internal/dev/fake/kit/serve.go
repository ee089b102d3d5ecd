package kit

import (
	"net/http"
	"net/http/httptest"

	"github.com/cartflow/cartflow/internal/dev/tb"
)

// Serve serves h on a new 127.0.0.1 test server for the rest of the test and returns its URL:
// a double, or a webhook receiver a double posts to.
func Serve(t tb.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
