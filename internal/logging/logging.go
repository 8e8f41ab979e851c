// Package logging sets up log/slog from configuration: one place decides the
// sink, the format and the level, and every record logged with a request's
// context carries its request_id.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Options are the logging settings from config.
type Options struct {
	Level  string // debug, info, warn, error
	Format string // json or text
}

// ParseLevel maps a config level name to a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q", s)
}

// New builds the logger writing to w. The returned LevelVar lets the level
// change at runtime without rebuilding the logger.
func New(w io.Writer, o Options) (*slog.Logger, *slog.LevelVar, error) {
	lvl, err := ParseLevel(o.Level)
	if err != nil {
		return nil, nil, err
	}
	level := new(slog.LevelVar)
	level.Set(lvl)
	ho := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch o.Format {
	case "json", "":
		h = slog.NewJSONHandler(w, ho)
	case "text":
		h = slog.NewTextHandler(w, ho)
	default:
		return nil, nil, fmt.Errorf("unknown log format %q", o.Format)
	}
	return slog.New(contextHandler{h}), level, nil
}
