package mailer

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func parseAddr(t *testing.T, s string) *mail.Address {
	t.Helper()
	a, err := mail.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantCRLF fails if raw has a line feed that is not part of a CRLF, or a bare carriage return.
func wantCRLF(t *testing.T, raw []byte) {
	t.Helper()
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			t.Fatalf("bare LF at byte %d: %q", i, raw[max(0, i-20):i+1])
		}
		if c == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
			t.Fatalf("bare CR at byte %d", i)
		}
	}
}

func TestBuildMessageMultipart(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 10, 14, 30, 0, 0, time.UTC)
	long := strings.Repeat("0123456789 ", 20) // longer than a quoted-printable line
	msg := Message{
		To:        "Zoë Ada <ada@example.com>",
		Subject:   "Reçu pour votre commande — 62,00 €",
		Text:      "Hello Zoë,\nline two\r\n" + long + "\n.a line with a leading dot\n",
		HTML:      "<p>Hello Zoë,</p>\n<p>" + long + "</p>",
		MessageID: "receipt-1@cartflow.test",
	}
	raw, err := buildMessage(parseAddr(t, "cartflow <shop@example.com>"), parseAddr(t, msg.To), msg, now)
	if err != nil {
		t.Fatal(err)
	}
	wantCRLF(t, raw)
	for i, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line %d is %d bytes long, over RFC 5322's 998", i, len(line))
		}
		for _, c := range []byte(line) {
			if c >= 0x80 {
				t.Fatalf("line %d has a non-ASCII byte: %q", i, line)
			}
		}
	}

	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header
	if d, err := h.Date(); err != nil || !d.Equal(now) {
		t.Fatalf("Date %q: %v, %v", h.Get("Date"), d, err)
	}
	if got := h.Get("Message-ID"); got != "<receipt-1@cartflow.test>" {
		t.Fatalf("Message-ID %q", got)
	}
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Name != "cartflow" || from.Address != "shop@example.com" {
		t.Fatalf("From %q: %+v, %v", h.Get("From"), from, err)
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Name != "Zoë Ada" || to.Address != "ada@example.com" {
		t.Fatalf("To %q: %+v, %v", h.Get("To"), to, err)
	}
	if !strings.HasPrefix(h.Get("Subject"), "=?utf-8?q?") {
		t.Fatalf("Subject %q is not RFC 2047 Q-encoded", h.Get("Subject"))
	}
	var dec mime.WordDecoder
	if subject, err := dec.DecodeHeader(h.Get("Subject")); err != nil || subject != msg.Subject {
		t.Fatalf("Subject decodes to %q (%v), want %q", subject, err, msg.Subject)
	}
	if h.Get("MIME-Version") != "1.0" {
		t.Fatalf("MIME-Version %q", h.Get("MIME-Version"))
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}

	mr := multipart.NewReader(m.Body, params["boundary"])
	wantParts := []struct{ mediaType, body string }{
		{"text/plain", "Hello Zoë,\r\nline two\r\n" + long + "\r\n.a line with a leading dot\r\n"},
		{"text/html", "<p>Hello Zoë,</p>\r\n<p>" + long + "</p>"},
	}
	for i, want := range wantParts {
		p, err := mr.NextRawPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		mt, pp, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil || mt != want.mediaType || pp["charset"] != "utf-8" {
			t.Fatalf("part %d Content-Type %q", i, p.Header.Get("Content-Type"))
		}
		if cte := p.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
			t.Fatalf("part %d Content-Transfer-Encoding %q", i, cte)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if string(body) != want.body {
			t.Fatalf("part %d body\n got %q\nwant %q", i, body, want.body)
		}
	}
	if _, err := mr.NextRawPart(); err != io.EOF {
		t.Fatalf("after two parts: %v, want EOF", err)
	}
}

func TestBuildMessageTextOnlyAndDefaults(t *testing.T) {
	t.Parallel()
	msg := Message{To: "ops@example.com", Subject: "Plain ASCII subject", Text: "just text\n"}
	raw, err := buildMessage(parseAddr(t, "shop@example.com"), parseAddr(t, msg.To), msg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantCRLF(t, raw)
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Subject"); got != "Plain ASCII subject" {
		t.Fatalf("an ASCII subject was changed to %q", got)
	}
	if mt, _, _ := mime.ParseMediaType(m.Header.Get("Content-Type")); mt != "text/plain" {
		t.Fatalf("Content-Type %q, want text/plain without HTML", m.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil || string(body) != "just text\r\n" {
		t.Fatalf("body %q, %v", body, err)
	}
	// A generated Message-ID is unique and in the sender's domain.
	id := m.Header.Get("Message-ID")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") || len(id) < 30 {
		t.Fatalf("generated Message-ID %q", id)
	}
	raw2, _ := buildMessage(parseAddr(t, "shop@example.com"), parseAddr(t, msg.To), msg, time.Now())
	m2, _ := mail.ReadMessage(bytes.NewReader(raw2))
	if m2.Header.Get("Message-ID") == id {
		t.Fatalf("two messages got the same Message-ID %q", id)
	}
}

func TestBuildMessageRefusesHeaderInjection(t *testing.T) {
	t.Parallel()
	from, to := parseAddr(t, "shop@example.com"), parseAddr(t, "ada@example.com")
	for name, msg := range map[string]Message{
		"subject with LF":         {Subject: "Hi\nBcc: victim@example.com", Text: "x"},
		"subject with CR":         {Subject: "Hi\rX", Text: "x"},
		"message ID with bracket": {Subject: "Hi", Text: "x", MessageID: "a>b@c"},
		"message ID with space":   {Subject: "Hi", Text: "x", MessageID: "a b@c"},
		"message ID without @":    {Subject: "Hi", Text: "x", MessageID: "abc"},
	} {
		_, err := buildMessage(from, to, msg, time.Now())
		if !errors.Is(err, ErrInvalidMessage) || !IsNotSent(err) {
			t.Errorf("%s: got %v, want ErrInvalidMessage that is also not sent", name, err)
		}
	}
}
