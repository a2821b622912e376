package recipestest_test

// The seeds hold provision entries, whose types package provision
// registers.
import _ "github.com/krgimage/krgimage/provision"
