// Package run executes subprocesses the way every krgimage step needs them:
// in their own process group so cancellation reaches grandchildren, with a
// clean environment, output streamed line by line to a logger, and an error
// that names the command and carries the last lines it printed.
package run
