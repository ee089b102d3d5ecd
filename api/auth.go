package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/cartflow/cartflow/internal/directory"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

// Customer sign-in: passwordless, by magic link, with a server-side session.
//
//   - POST /auth/sign-in-links starts a SignInLink workflow for every well-formed address, known
//     or not, and answers 202 with one body: the endpoint does the same work either way, so that
//     neither its answer nor its timing tells who is a customer. The worker's activity emails a
//     known customer a single-use link valid for 15 minutes and stores only the token's hash.
//   - POST /auth/sessions spends the token (once, before it expires), confirms the user (the
//     User Directory's confirm: the link proved the address), claims the guest orders placed with
//     that email, revokes the session the request came with, and sets a new session cookie.
//   - The cookie holds only the session's random secret: HttpOnly, SameSite=Lax, Secure except
//     when the storefront is on a loopback host. Postgres holds the session, hashed, with an idle
//     and an absolute expiry; signing out revokes it there, so a stolen cookie dies with it.
//
// Neither endpoint takes an Idempotency-Key: a repeated sign-in-link request only sends another
// link (and is rate limited), and a token works once by itself.

// sessionCookie names the customer's session cookie.
const sessionCookie = "cartflow_session"

// customerIDKey holds the signed-in customer's user id on the Gin context.
const customerIDKey = "customer_id"

// nextPathPattern is a storefront path to land on after signing in: absolute, segment by segment,
// so that "//host" (another site) or "/../" can never pass.
var nextPathPattern = regexp.MustCompile(`^(/[a-z0-9][a-z0-9_-]*)+$`)

// sessionTokenPattern is the shape of a sign-in token or session secret (32 bytes, base64url).
var sessionTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

var (
	errSessionRequired = &apiError{Status: http.StatusUnauthorized, Code: "session_required", Message: "sign in first"}
	errSessionInvalid  = &apiError{Status: http.StatusUnauthorized, Code: "session_invalid",
		Message: "your session has ended; sign in again"}
	errSignInLinkInvalid = &apiError{Status: http.StatusUnauthorized, Code: "sign_in_link_invalid", Field: "token",
		Message: "this sign-in link is invalid, used or expired; ask for a new one"}
)

// signInLinkAnswer is the one answer POST /auth/sign-in-links gives to every well-formed request.
var signInLinkAnswer = gin.H{"status": "accepted",
	"message": "If this address belongs to a customer, a sign-in link is on its way. It works once, within 15 minutes."}

type signInLinkRequest struct {
	Email string `json:"email"`
	Next  string `json:"next"`
}

func (s *server) requestSignInLink(c *gin.Context) {
	var req signInLinkRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		writeError(c, err)
		return
	}
	email, err := directory.StandardizeEmail(req.Email)
	if err != nil {
		writeError(c, unprocessable("invalid_email", "email", "email must be an email address"))
		return
	}
	if req.Next != "" && !nextPathPattern.MatchString(req.Next) {
		writeError(c, unprocessable("invalid_next", "next", "next must be a path of the storefront, such as /account"))
		return
	}
	// Limited per IP and per address (shared by every replica), whether the address is known or not.
	if !s.limitSignIn(c, email) {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.CheckoutWait)
	defer cancel()
	_, err = s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.SignInLinkWorkflowID(newRandomID("")), TaskQueue: workflows.TaskQueue,
	}, workflows.SignInLinkWorkflowType, workflows.SignInLinkRequest{Email: email, Next: req.Next})
	if err != nil {
		s.log.ErrorContext(c.Request.Context(), "start sign-in link", "error", err)
		writeError(c, errUnavailable)
		return
	}
	c.JSON(http.StatusAccepted, signInLinkAnswer)
}

type sessionRequest struct {
	Token string `json:"token"`
}

// createSession exchanges a sign-in token for a session: 201 with the customer and where the
// link meant to land, and the session cookie.
func (s *server) createSession(c *gin.Context) {
	var req sessionRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		writeError(c, err)
		return
	}
	if !sessionTokenPattern.MatchString(req.Token) {
		writeError(c, errSignInLinkInvalid)
		return
	}
	presented, _ := c.Cookie(sessionCookie)
	in, err := s.store.SignInWithToken(c.Request.Context(), req.Token, presented, s.cfg.SessionLifetime)
	if errors.Is(err, store.ErrSignInLinkInvalid) {
		writeError(c, errSignInLinkInvalid)
		return
	}
	if err != nil {
		writeError(c, err)
		return
	}
	s.setSessionCookie(c, in.Token, s.cfg.SessionLifetime)
	next := in.Next
	if next == "" {
		next = "/account"
	}
	c.JSON(http.StatusCreated, gin.H{"customer": customerViewOf(in.User), "next": next, "claimed_orders": in.ClaimedOrders})
}

// signOut ends the session the request came with.
func (s *server) signOut(c *gin.Context) {
	token, _ := c.Cookie(sessionCookie)
	if err := s.store.RevokeSession(c.Request.Context(), token); err != nil {
		writeError(c, err)
		return
	}
	s.setSessionCookie(c, "", -1)
	c.Status(http.StatusNoContent)
}

// signOutEverywhere ends every session of the signed-in customer, this one included.
func (s *server) signOutEverywhere(c *gin.Context) {
	n, err := s.store.RevokeUserSessions(c.Request.Context(), c.GetString(customerIDKey))
	if err != nil {
		writeError(c, err)
		return
	}
	s.setSessionCookie(c, "", -1)
	c.JSON(http.StatusOK, gin.H{"revoked_sessions": n})
}

// customer is the middleware of every customer route: it needs a live session and puts its
// user on the context. Personal answers are never stored by a cache.
func (s *server) customer(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	token, err := c.Cookie(sessionCookie)
	if err != nil || token == "" {
		writeError(c, errSessionRequired)
		return
	}
	if !sessionTokenPattern.MatchString(token) {
		writeError(c, errSessionInvalid)
		return
	}
	sess, err := s.store.SessionByToken(c.Request.Context(), token, s.cfg.SessionIdleTimeout)
	if errors.Is(err, store.ErrNotFound) {
		s.setSessionCookie(c, "", -1)
		writeError(c, errSessionInvalid)
		return
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.Set(customerIDKey, sess.UserID)
	c.Next()
}

// setSessionCookie sets (or, with maxAge < 0, clears) the session cookie. Its lifetime is the
// session's absolute one; the idle expiry is the server's to enforce.
func (s *server) setSessionCookie(c *gin.Context, value string, maxAge time.Duration) {
	seconds := int(maxAge / time.Second)
	if maxAge < 0 {
		seconds = -1
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: seconds,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: !s.storefrontOnLoopback(),
	})
}

// storefrontOnLoopback reports whether the storefront runs on this machine (make dev, tests),
// where browsers serve plain http and a Secure cookie would never come back.
func (s *server) storefrontOnLoopback() bool {
	u, err := url.Parse(s.cfg.StorefrontURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
