package pipeline

import (
	"context"
	"fmt"

	"github.com/krgimage/krgimage/snapshot"
)

// snapshotStep ends a build with the seed's advice, "create a tarball of
// the directory after the install is done ... preserve the permissions":
// a lossless, verifiable snapshot of the image root in the output.
type snapshotStep struct{}

func (*snapshotStep) Name() string { return "snapshot" }

// It reads the image root and writes only to the output directory.
func (*snapshotStep) outputOnly() {}

func (*snapshotStep) options(env *Env) snapshot.Options {
	s := env.Recipe.Outputs.Snapshot
	return snapshot.Options{Compression: snapshot.Compression(s.Compression), Level: s.Level, SourceDateEpoch: env.SourceDateEpoch,
		Log: env.Log, Progress: env.Task}
}

// normalizedOptions are the options with the defaults filled in, as the
// archive records them.
func (s *snapshotStep) normalizedOptions(env *Env) (snapshot.Options, error) {
	o := s.options(env)
	if err := o.Validate(); err != nil {
		return o, err
	}
	if o.Compression == "" {
		o.Compression = snapshot.Zstd
	}
	if o.Level == 0 {
		o.Level = snapshot.DefaultLevel[o.Compression]
	}
	return o, nil
}

func (s *snapshotStep) Describe(env *Env) []string {
	o := env.Recipe.Outputs.Snapshot
	path := env.finalLayout().Snapshot()
	out := []string{fmt.Sprintf("write %s (%s, with its manifest first) and %s", path, o.Compression, snapshot.SidecarPath(path))}
	if env.SourceDateEpoch != nil {
		out = append(out, "mtimes clamped to SOURCE_DATE_EPOCH "+env.SourceDateEpoch.UTC().Format("2006-01-02T15:04:05Z"))
	} else {
		out = append(out, "mtimes clamped to SOURCE_DATE_EPOCH (by default the date of the suite's Release file)")
	}
	return out
}

func (s *snapshotStep) Validate(context.Context, *Env) error {
	return nil
}

func (s *snapshotStep) Run(ctx context.Context, env *Env) error {
	res, err := snapshot.WriteFile(ctx, env.Root, env.layout().Snapshot(), s.options(env))
	if err != nil {
		return err
	}
	env.State.Snapshot = &SnapshotInfo{Path: env.Recipe.Outputs.Snapshot.Path, SHA256: res.SHA256, Bytes: res.Size, Entries: res.Entries}
	env.Log.Info("snapshot written", "path", env.finalLayout().Snapshot(), "bytes", res.Size, "entries", res.Entries, "sha256", res.SHA256)
	return nil
}
