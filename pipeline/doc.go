// Package pipeline turns a recipe into an ordered list of steps and runs
// them: every step is validated before any runs, host preconditions are
// checked next, and each step's cleanup runs in reverse whatever happens.
// The build's output directory is package layout's: where each output
// goes, locked while a build writes it, built in a staging directory and
// swapped into place only when the whole build succeeded. RunOutputStep
// runs one output step (netboot, media) alone on a finished build, as
// krgimage netboot and media do.
//
// With the stage cache (Options.StageCache), each step that changes the
// image root has a key, and the build starts from the deepest step whose
// key is unchanged (see stageCache and package stagecache). After the last
// such step the root is normalized so that the build is reproducible (the
// normalize step the build adds there, see withNormalize), and build.json lists what came from the cache, the installed
// packages and the outputs' digests; CompareReports says what changed from
// one build to the next.
package pipeline
