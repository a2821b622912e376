package pipeline

import (
	"context"
	"strings"

	"github.com/krgimage/krgimage/bootstrap"
)

// bootstrapStep creates the base system with debootstrap, as the seed does
// with "debootstrap lenny /NFSROOT/kerrighed".
type bootstrapStep struct {
	// host replaces the build machine in tests.
	host bootstrap.Host
}

func (*bootstrapStep) Name() string { return "bootstrap" }

func (s *bootstrapStep) options(env *Env) bootstrap.Options {
	r := env.Recipe
	return bootstrap.Options{
		Suite:      r.Suite,
		Arch:       r.Architecture,
		Variant:    r.Variant,
		Mirror:     env.Mirror.URL,
		Components: r.Components,
		Include:    r.Bootstrap.Include,
		Exclude:    r.Bootstrap.Exclude,
		Keyring:    r.Path(r.Keyring),
		Insecure:   r.Insecure,
		Foreign:    r.Bootstrap.Foreign,
		MergedUsr:  r.Bootstrap.MergedUsr,
		Target:     env.Root,
	}
}

func (s *bootstrapStep) driver(env *Env) *bootstrap.Debootstrap {
	d := bootstrap.NewDebootstrap(env.Runner, env.Log)
	if s.host != nil {
		d.Host = s.host
	}
	return d
}

func (s *bootstrapStep) Describe(env *Env) []string {
	o := s.options(env)
	lines := []string{"debootstrap " + strings.Join(bootstrap.Args(o), " ")}
	if o.Insecure {
		lines = append(lines, "WARNING: Release signatures are not checked (insecure: true)")
	}
	if o.Foreign {
		lines = append(lines, "then the second stage inside the image under qemu-user-static")
	}
	lines = append(lines, "checks first: root, debootstrap and gpgv installed, an empty target, the mirror carries "+
		o.Suite+"/"+o.Arch+" ("+strings.Join(o.Components, ", ")+"), the host runs "+o.Arch+" binaries")
	return lines
}

func (*bootstrapStep) Validate(context.Context, *Env) error { return nil }

func (s *bootstrapStep) Preflight(ctx context.Context, env *Env) error {
	return s.driver(env).Preflight(ctx, s.options(env))
}

func (s *bootstrapStep) Run(ctx context.Context, env *Env) error {
	return s.driver(env).Run(ctx, s.options(env), env.Task)
}
