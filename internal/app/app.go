// Package app holds the start-up that the worker and the BFF share: logging and telemetry, the
// PostgreSQL pool with migrations, the Temporal client, error reporting, and the payment
// providers' clients built from their configuration.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"

	"github.com/cartflow/cartflow/internal/codec"
	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/logging"
	"github.com/cartflow/cartflow/internal/metrics"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/internal/telemetry"
	"github.com/cartflow/cartflow/migrations"
)

// Deps are the long-lived clients a process builds once and reuses.
type Deps struct {
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Temporal client.Client
	// Metrics is the process's Prometheus registry; the Temporal client reports into it.
	Metrics *metrics.Registry
	// Telemetry traces requests, workflows and activities, and ships logs, as configured.
	Telemetry *telemetry.Telemetry
	// Codec encrypts every payload and failure the Temporal client sends and decrypts what it
	// reads; DataConverter is the client's converter over it, for payloads read by hand (memos).
	Codec         *codec.Codec
	DataConverter converter.DataConverter
}

// Close releases the clients.
func (d *Deps) Close() {
	if d.Temporal != nil {
		d.Temporal.Close()
	}
	if d.Pool != nil {
		d.Pool.Close()
	}
	_ = d.Metrics.Close()
	if d.Telemetry != nil {
		// Last, so that the lines logged while closing are shipped too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Telemetry.Shutdown(ctx)
	}
}

// Start sets up telemetry and JSON logging for process, opens the database (migrating and
// seeding it as configured) and connects to Temporal. On error nothing stays open.
func Start(ctx context.Context, cfg config.Common, process string, stdout io.Writer) (_ *Deps, err error) {
	// Checked first: a process that could not read its histories must not start at all.
	cdc, err := NewCodec(cfg.Codec)
	if err != nil {
		return nil, err
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		Process: process, Release: cfg.Sentry.Release, Environment: cfg.Sentry.Environment,
		TracesEndpoint: cfg.Tracing.Endpoint, TraceSampleRatio: cfg.Tracing.SampleRatio,
		Coralogix: telemetry.Coralogix{Endpoint: cfg.Coralogix.Endpoint, PrivateKey: cfg.Coralogix.PrivateKey,
			ApplicationName: cfg.Coralogix.ApplicationName, SubsystemName: cfg.Coralogix.SubsystemName},
	})
	if err != nil {
		return nil, err
	}
	d := &Deps{Log: logging.New(stdout, cfg.LogLevel, process, tel.LogHandlers()...), Metrics: metrics.New(), Telemetry: tel,
		Codec: cdc, DataConverter: codec.DataConverter(cdc)}
	slog.SetDefault(d.Log)
	// An export failure is written to stdout only: shipping it would queue more of what failed.
	stdoutOnly := logging.New(stdout, cfg.LogLevel, process).With("component", "opentelemetry")
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { stdoutOnly.Warn("telemetry export failed", "error", err) }))
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	interceptors, err := tel.TemporalInterceptors()
	if err != nil {
		return nil, err
	}

	if d.Pool, err = store.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns); err != nil {
		return nil, err
	}
	if cfg.Database.MigrateOnStart {
		if err := migrations.Migrate(ctx, d.Pool); err != nil {
			return nil, err
		}
	}
	if cfg.Database.SeedDevCatalog {
		if err := migrations.SeedDevCatalog(ctx, d.Pool); err != nil {
			return nil, err
		}
	}
	d.Temporal, err = client.DialContext(ctx, client.Options{
		HostPort: cfg.Temporal.Address, Namespace: cfg.Temporal.Namespace,
		Logger:         tlog.NewStructuredLogger(d.Log.With("component", "temporal")),
		MetricsHandler: d.Metrics.TemporalMetricsHandler(),
		Interceptors:   interceptors,
		// Workflows and activities in the worker, and the BFF's starts, updates and schedule
		// actions, all go through this client, so all are encrypted.
		DataConverter:    d.DataConverter,
		FailureConverter: codec.FailureConverter(d.DataConverter),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.Temporal.Address, err)
	}
	return d, nil
}

// NewCodec builds the payload codec from its settings. Its errors name the variable and the key
// id, never key material.
func NewCodec(cfg config.Codec) (*codec.Codec, error) {
	keys, err := codec.ParseKeyring(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("CODEC_KEYS: %w", err)
	}
	c, err := codec.New(keys, cfg.ActiveKeyID)
	if err != nil {
		return nil, fmt.Errorf("CODEC_KEYS / CODEC_ACTIVE_KEY_ID: %w", err)
	}
	return c, nil
}
