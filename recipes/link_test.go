package recipes_test

// Recipes' tests read provision entries, whose types package provision
// registers: linking it here makes them known to the internal tests too,
// which cannot import it (provision imports recipes).
import _ "github.com/krgimage/krgimage/provision"
