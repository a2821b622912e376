package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/provision"
	"github.com/krgimage/krgimage/recipes"
	"github.com/krgimage/krgimage/stagecache"
)

// provisionStep is the build step of one provision entry of the recipe:
// it runs the entry's provision.Step in a chroot session.
type provisionStep struct {
	name  string
	entry recipes.ProvisionEntry
}

func (p *provisionStep) Name() string { return p.name }

func (p *provisionStep) image(env *Env) *chroot.Image {
	return env.chrootImage()
}

func (p *provisionStep) step(env *Env) (provision.Step, error) {
	return provision.New(p.entry, p.image(env))
}

func (p *provisionStep) Describe(env *Env) []string {
	s, err := p.step(env)
	if err != nil {
		return []string{err.Error()}
	}
	return s.Describe()
}

func (p *provisionStep) Validate(_ context.Context, env *Env) error {
	s, err := p.step(env)
	if err != nil {
		return err
	}
	if err := s.Check(); err != nil {
		pos := env.Recipe.Pos(p.entry.Path)
		return fmt.Errorf("%s:%d: %w", env.Recipe.Source, pos.Line, err)
	}
	return nil
}

func (p *provisionStep) Run(ctx context.Context, env *Env) (err error) {
	s, err := p.step(env)
	if err != nil {
		return err
	}
	sess, err := chroot.Open(ctx, p.image(env))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sess.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the chroot session: %w", cerr)
		}
	}()
	return s.Apply(ctx, sess)
}

// provisionSteps names each entry by its type, numbering repeats.
func provisionSteps(r *recipes.Recipe) []BuildStep {
	seen := map[string]int{}
	var out []BuildStep
	for _, e := range r.Provision {
		seen[e.Type]++
		name := e.Type
		if n := seen[e.Type]; n > 1 {
			name = fmt.Sprintf("%s#%d", e.Type, n)
		}
		out = append(out, &provisionStep{name: name, entry: e})
	}
	return out
}

func (p *provisionStep) addKey(ctx context.Context, env *Env, k *stagecache.Key, rel *releases) error {
	r := env.Recipe
	k.Add("provision", p.entry.Type)
	k.AddBytes("config", canonical(p.entry.Config))
	k.AddBytes("context", recipeContext(env))
	s, err := p.step(env)
	if err != nil {
		return err
	}
	reads, err := s.Reads()
	if err != nil {
		return err
	}
	for _, in := range reads {
		switch {
		case in.Env != "":
			v, ok := env.LookupEnv(in.Env)
			k.Add(in.Key, in.Env, strconv.FormatBool(ok), v)
		case in.File != "":
			if err := k.AddPath(in.Key, r.Path(in.File)); err != nil {
				return err
			}
		case in.Archive != nil:
			a := in.Archive
			re, err := rel.get(ctx, strings.TrimRight(a.URI, "/"), a.Suite, a.Components, r.Architecture)
			if err != nil {
				return err
			}
			k.Add(in.Key, a.URI, a.Suite, re.Indices)
		}
	}
	return nil
}
