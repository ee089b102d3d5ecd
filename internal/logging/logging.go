// Package logging builds the JSON slog loggers every cartflow process writes with.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON logger at the named level ("debug", "info", "warn", "error"; unknown means info),
// tagged with the process name so that shipped logs can be told apart. Every line goes through
// the redaction layer (Redact).
func New(w io.Writer, level, process string) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl, ReplaceAttr: redactAttr})).With("process", process)
}
