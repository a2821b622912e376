// Command krgimage builds root filesystems for diskless cluster nodes that
// boot over PXE with an NFS root.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/krgimage/krgimage/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, let a second one kill krgimage at once;
		// its mounts live in private namespaces, so nothing leaks.
		<-ctx.Done()
		stop()
	}()
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
