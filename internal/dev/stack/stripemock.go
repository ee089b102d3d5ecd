package stack

import (
	"context"
	"io"
	"os/exec"
)

// StripeMock is a stripe-mock process serving the Stripe API over HTTP.
type StripeMock struct {
	proc *Process
	url  string
}

// StartStripeMock starts stripe-mock with HTTP on 127.0.0.1:port (0 picks a
// free port) and waits until it answers HTTP requests.
//
// stripe-mock also listens for HTTPS on [::]:12112 unless told otherwise,
// even when only an HTTP address is given; binding HTTPS to 127.0.0.1:0
// keeps it local and lets several instances run side by side.
func StartStripeMock(ctx context.Context, port int, log io.Writer) (*StripeMock, error) {
	bin, err := ToolPath("stripe-mock")
	if err != nil {
		return nil, err
	}
	if port, err = portOrFree(port); err != nil {
		return nil, err
	}
	s := &StripeMock{url: "http://" + addr(port)}
	cmd := exec.Command(bin, "-http-addr", addr(port), "-https-addr", addr(0))
	s.proc, err = startAndWait(ctx, "stripe-mock", cmd, log, func(ctx context.Context) error {
		return httpGet(ctx, s.url+"/v1/customers", false, io.Discard) // any answer, even 401, means it serves
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// URL returns the base URL to use as the Stripe API backend.
func (s *StripeMock) URL() string { return s.url }

// Process returns the stripe-mock process.
func (s *StripeMock) Process() *Process { return s.proc }

// Stop shuts stripe-mock down.
func (s *StripeMock) Stop() error { return s.proc.Stop(stopTimeout) }
