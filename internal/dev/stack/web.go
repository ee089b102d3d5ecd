package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The storefront (web/, Next.js) as a stack component. It talks only to the BFF, from the Next
// server; the BFF knows its origin (STOREFRONT_URL) for redirects, CORS and the CSRF check, and
// trusts 127.0.0.1 as its proxy, so that per-IP limits see the shopper rather than Next.

// WebMode is how the storefront runs.
type WebMode string

const (
	// WebDev runs `next dev`: pages compile on first request and reload on change (make dev).
	WebDev WebMode = "dev"
	// WebProduction builds with `next build`, then serves with `next start` (the browser tests).
	WebProduction WebMode = "production"
)

// LocalCartSecret signs the storefront's cart cookie in the local stack; next start runs in
// production mode, which refuses to start without one. It is public, like the other local secrets.
const LocalCartSecret = "cartflow-local-cart-secret-0123456789"

// MinNodeMajor is the oldest Node the storefront runs on: Next 16 needs 20.9.
const MinNodeMajor = 20

// storefrontURL is the origin the storefront is served at. localhost rather than 127.0.0.1:
// browsers treat it as a secure context, and the BFF's cookie is then not Secure-only.
func storefrontURL(port int) string { return "http://localhost:" + strconv.Itoa(port) }

// WebDir is the storefront's source folder.
func WebDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "web"), nil
}

// CheckNode fails unless a Node of at least MinNodeMajor is on PATH.
func CheckNode(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "node", "--version").Output()
	if err != nil {
		return fmt.Errorf("stack: the storefront needs Node %d or later on PATH: %w", MinNodeMajor, err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if major < MinNodeMajor {
		return fmt.Errorf("stack: the storefront needs Node %d or later, found %s", MinNodeMajor, strings.TrimSpace(string(out)))
	}
	return nil
}

// EnsureWebDeps installs web/'s dependencies with `npm ci` when the lock file is newer than the
// last install (npm writes node_modules/.package-lock.json), as `make web-deps` does.
func EnsureWebDeps(ctx context.Context, dir string) error {
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("stack: web/package-lock.json: %w", err)
	}
	if installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil && !installed.ModTime().Before(lock.ModTime()) {
		return nil
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir, cmd.Env = dir, webEnv(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stack: npm ci in web/: %w\n%s", err, lastBytes(out, 4000))
	}
	return nil
}

// BuildWeb runs `next build` in web/.
func BuildWeb(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "npm", "run", "build")
	cmd.Dir, cmd.Env = dir, webEnv(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stack: next build: %w\n%s", err, lastBytes(out, 4000))
	}
	return nil
}

// lastBytes is the end of a command's output, for an error message.
func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// webEnv is the environment of npm and Next: no telemetry, ever.
func webEnv(extra []string) []string {
	return append(append(os.Environ(), "NEXT_TELEMETRY_DISABLED=1"), extra...)
}

// Web returns the running storefront, or nil.
func (s *Stack) Web() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.web
}

// StartWeb installs, builds when mode is WebProduction, and starts the storefront on the port
// the stack was given (Options.StorefrontPort), pointed at this stack's BFF and doubles. It
// returns once the storefront answers. Stop stops it with the rest.
func (s *Stack) StartWeb(ctx context.Context, mode WebMode) error {
	if s.opts.StorefrontPort == 0 {
		return errors.New("stack: StartWeb needs Options.StorefrontPort, which the BFF must know at start")
	}
	if err := CheckNode(ctx); err != nil {
		return err
	}
	dir, err := WebDir()
	if err != nil {
		return err
	}
	if err := EnsureWebDeps(ctx, dir); err != nil {
		return err
	}
	// Node runs the server itself, not through npm and a shell: then the server is the stack's
	// child, which dies with the stack even when the stack is killed (Pdeathsig), where a
	// grandchild under npm would be left holding the port. Both read PORT and HOSTNAME.
	cmd := exec.Command("node", "node_modules/next/dist/bin/next", "dev", "--port", strconv.Itoa(s.opts.StorefrontPort), "--hostname", host)
	if mode == WebProduction {
		if err := BuildWeb(ctx, dir); err != nil {
			return err
		}
		cmd = exec.Command("node", "server.mjs")
	}
	cmd.Dir = dir
	cmd.Env = webEnv([]string{
		"PORT=" + strconv.Itoa(s.opts.StorefrontPort), "HOSTNAME=" + host,
		"CARTFLOW_API_URL=" + s.APIURL, "STOREFRONT_URL=" + s.StorefrontURL,
		"STRIPE_LAYER_URL=" + s.StripeURL, "PAYPAL_DOUBLE_URL=" + s.PayPalURL, "CART_SECRET=" + LocalCartSecret,
	})
	// next start runs its server as a child: the process group (StartProcess) stops both.
	// Ready once it listens: `next dev` compiles a page at its first request, which may take
	// longer than one probe.
	p, err := startAndWait(ctx, "web", cmd, s.log("web"), func(ctx context.Context) error {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr(s.opts.StorefrontPort))
		if err == nil {
			conn.Close()
		}
		return err
	})
	s.mu.Lock()
	s.web = p
	s.mu.Unlock()
	return err
}
