package chroot

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// InstallArgs is the apt-get command Install runs: maintainer scripts
// keep the image's configuration files, and recommended packages come
// only when asked for.
func InstallArgs(pkgs []string, recommends bool) []string {
	a := []string{"apt-get", "install", "-y", "-q",
		"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
	if !recommends {
		a = append(a, "--no-install-recommends")
	}
	return append(a, pkgs...)
}

var (
	unknownPkgRE  = regexp.MustCompile(`^E: Unable to locate package (\S+)`)
	noCandidateRE = regexp.MustCompile(`^E: Package '([^']+)' has no installation candidate`)
)

// Install installs packages with apt-get (updating the lists first when the
// image has none), extra environment variables added. A package apt does
// not know is an ErrNoSuchPackage naming it.
func (s *Session) Install(ctx context.Context, pkgs []string, recommends bool, env ...string) error {
	if err := ensureLists(ctx, s); err != nil {
		return err
	}
	argv := InstallArgs(pkgs, recommends)
	var mu sync.Mutex
	var unknown []string
	err := s.RunCommand(ctx, Command{Argv: argv, Env: env, Line: func(l string) {
		for _, re := range []*regexp.Regexp{unknownPkgRE, noCandidateRE} {
			if m := re.FindStringSubmatch(l); m != nil {
				mu.Lock()
				unknown = append(unknown, m[1])
				mu.Unlock()
			}
		}
	}})
	if len(unknown) > 0 {
		return fmt.Errorf("%w: %s not in %s (check the name and the apt sources)", ErrNoSuchPackage, strings.Join(unknown, ", "), s.Recipe.Suite)
	}
	if err != nil {
		return err
	}
	return s.Run(ctx, "apt-get", "clean")
}

// ensureLists runs apt-get update when the image has no package lists:
// a step may install packages before any apt-sources step.
func ensureLists(ctx context.Context, s *Session) error {
	lists, err := s.Glob("/var/lib/apt/lists", "*_Packages*")
	if err != nil {
		return err
	}
	if len(lists) > 0 {
		return nil
	}
	return s.Run(ctx, "apt-get", "update")
}
