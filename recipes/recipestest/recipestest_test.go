package recipestest

import "testing"

// The first two seeds validate, the others do not: a fuzz target then
// checks generated files from its first run on.
func TestSeeds(t *testing.T) {
	for i, v := range Seeds {
		_, err := Recipe(v)
		if (err == nil) != (i < 2) {
			t.Errorf("seed %d (%q): validation error %v", i, v.Name, err)
		}
	}
}
