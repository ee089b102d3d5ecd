package stack

import (
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
)

// MailpitOptions configures StartMailpit.
type MailpitOptions struct {
	SMTPPort int       // SMTP port on 127.0.0.1; 0 picks a free one
	UIPort   int       // web UI and API port on 127.0.0.1; 0 picks a free one
	DBFile   string    // message store; empty uses a temporary file deleted on exit
	Log      io.Writer // mailpit output; nil discards it
}

// Mailpit is a Mailpit process: an SMTP server that keeps every message
// for inspection through its web UI and API.
type Mailpit struct {
	proc     *Process
	smtpAddr string
	uiURL    string
}

// StartMailpit starts Mailpit with SMTP and the UI on 127.0.0.1 and waits
// until both accept connections.
//
// The update check is disabled (it would dial GitHub) and so are reverse
// DNS lookups of SMTP clients, which only slow things down offline.
func StartMailpit(ctx context.Context, opts MailpitOptions) (*Mailpit, error) {
	bin, err := ToolPath("mailpit")
	if err != nil {
		return nil, err
	}
	smtpPort, err := portOrFree(opts.SMTPPort)
	if err != nil {
		return nil, err
	}
	uiPort, err := portOrFree(opts.UIPort)
	if err != nil {
		return nil, err
	}
	m := &Mailpit{smtpAddr: addr(smtpPort), uiURL: "http://" + addr(uiPort)}
	args := []string{"--smtp", m.smtpAddr, "--listen", addr(uiPort), "--disable-version-check", "--smtp-disable-rdns"}
	if opts.DBFile != "" {
		if err := ensureDir(filepath.Dir(opts.DBFile)); err != nil {
			return nil, err
		}
		args = append(args, "--database", opts.DBFile)
	}
	m.proc, err = startAndWait(ctx, "mailpit", exec.Command(bin, args...), opts.Log, func(ctx context.Context) error {
		if err := GetOK(ctx, m.uiURL+"/api/v1/info", io.Discard); err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", m.smtpAddr)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// SMTPAddr returns the SMTP server's host:port.
func (m *Mailpit) SMTPAddr() string { return m.smtpAddr }

// UIURL returns the base URL of the web UI and the /api/v1 API.
func (m *Mailpit) UIURL() string { return m.uiURL }

// Process returns the mailpit process.
func (m *Mailpit) Process() *Process { return m.proc }

// Stop shuts Mailpit down.
func (m *Mailpit) Stop() error { return m.proc.Stop(stopTimeout) }
