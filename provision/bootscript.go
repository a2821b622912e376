package provision

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/krgimage/krgimage/chroot"
	"github.com/krgimage/krgimage/recipes"
)

// Nodes share one root, so what makes a node itself (its name, its SSH
// host keys, its machine id) must be decided at boot, not in the image.
// nfsbooted and ssh install small boot-time scripts for that, run by systemd or,
// on older suites, by sysvinit.

// sysvScript wraps a boot script for sysvinit suites.
func sysvScript(name, desc, before, run string) string {
	return fmt.Sprintf(`#!/bin/sh
### BEGIN INIT INFO
# Provides:          %[1]s
# Required-Start:    $local_fs
# Required-Stop:
# X-Start-Before:    %[3]s
# Default-Start:     S
# Default-Stop:
# Short-Description: %[2]s
### END INIT INFO
# Installed by krgimage.
case "$1" in
start) %[4]s ;;
stop|restart|force-reload|status) ;;
*) echo "Usage: $0 start" >&2; exit 3 ;;
esac
exit 0
`, name, desc, before, run)
}

// bootScript installs /usr/local/sbin/NAME and runs it at boot.
func bootScript(ctx context.Context, s *chroot.Session, name, script, unit, desc, before string) error {
	if err := s.WriteFile("/usr/local/sbin/"+name, []byte(script), 0o755, "root", "root"); err != nil {
		return err
	}
	if recipes.Systemd(s.Recipe.Suite) {
		unitPath := "/etc/systemd/system/" + name + ".service"
		if err := s.WriteFile(unitPath, []byte(unit), 0o644, "root", "root"); err != nil {
			return err
		}
		// What systemctl enable would do, without needing systemd to run.
		for _, l := range strings.Split(unit, "\n") {
			for _, key := range []string{"WantedBy=", "RequiredBy="} {
				if target, ok := strings.CutPrefix(l, key); ok {
					dir := "/etc/systemd/system/" + target + map[string]string{"WantedBy=": ".wants", "RequiredBy=": ".requires"}[key]
					if err := s.Symlink(unitPath, path.Join(dir, name+".service")); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := s.WriteFile("/etc/init.d/"+name, []byte(sysvScript(name, desc, before, "/usr/local/sbin/"+name)), 0o755, "root", "root"); err != nil {
		return err
	}
	return s.Run(ctx, "update-rc.d", name, "defaults")
}
