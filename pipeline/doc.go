// Package pipeline turns a recipe into an ordered list of steps and runs
// them: every step is validated before any runs, host preconditions are
// checked next, and each step's cleanup runs in reverse whatever happens.
// It also owns the build's output directory: locked while a build writes
// it, built in a staging directory and swapped into place only when the
// whole build succeeded.
package pipeline
