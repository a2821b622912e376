//go:build !linux

package snapshot

import "os"

func openTreeFile(root, rel string) (*os.File, error) { return openTreeFileRoot(root, rel) }
