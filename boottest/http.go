package boottest

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/krgimage/krgimage/internal/netns"
	"github.com/krgimage/krgimage/internal/run"
	"github.com/krgimage/krgimage/netboot"
	"github.com/krgimage/krgimage/recipes"
)

// webServer is nginx serving the TFTP tree for an HTTP boot, in the
// foreground with its logs, PID and temporary files in work: the site
// the netboot generator writes, its root the tree the test serves.
func webServer(r *recipes.Recipe, ns *netns.Namespace, work, tftp string) (serverCmd, error) {
	bin, err := run.LookSbin("nginx")
	if err != nil {
		return serverCmd{}, fmt.Errorf("nginx not found: install nginx-light")
	}
	c := r.WithNetboot(func(nb *recipes.Netboot) { nb.TFTP.Root = tftp })
	site := filepath.Join(work, "nginx-site")
	if err := os.WriteFile(site, []byte(netboot.NginxSite(c)), 0o644); err != nil {
		return serverCmd{}, err
	}
	conf := fmt.Sprintf("daemon off;\nuser root;\nerror_log %[1]s/nginx-error.log info;\npid %[1]s/nginx.pid;\nevents {}\nhttp {\n"+
		"\taccess_log %[1]s/nginx-access.log;\n\tsendfile on;\n"+
		"\tclient_body_temp_path %[1]s/nginx-tmp/body;\n\tproxy_temp_path %[1]s/nginx-tmp/proxy;\n\tfastcgi_temp_path %[1]s/nginx-tmp/fastcgi;\n"+
		"\tuwsgi_temp_path %[1]s/nginx-tmp/uwsgi;\n\tscgi_temp_path %[1]s/nginx-tmp/scgi;\n\tinclude %[2]s;\n}\n", work, site)
	path := filepath.Join(work, "nginx.conf")
	if err := os.MkdirAll(filepath.Join(work, "nginx-tmp"), 0o755); err != nil {
		return serverCmd{}, err
	}
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return serverCmd{}, err
	}
	return serverCmd{"nginx", ns.Exec(bin, "-p", work, "-c", path)}, nil
}
