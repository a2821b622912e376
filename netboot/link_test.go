package netboot_test

// The recipes these tests load hold provision entries, whose types
// package provision registers.
import _ "github.com/krgimage/krgimage/provision"
