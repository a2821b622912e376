// Package logging builds the slog loggers krgimage writes: a compact human
// format for terminals and a JSON format for CI.
package logging
