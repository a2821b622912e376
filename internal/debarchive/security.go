package debarchive

import "strings"

// securityRenamed is the Debian major version whose security archive
// first named its suite SUITE-security (bullseye); before, it was
// SUITE/updates.
const securityRenamed = 11

// SecuritySuite names the security archive's suite of the release suite,
// whose Debian major version is major (99 for one not released yet).
func SecuritySuite(suite string, major int) string {
	if major < securityRenamed {
		return suite + "/updates"
	}
	return suite + "-security"
}

// IsSecuritySuite reports whether s names a security archive's suite, in
// either form SecuritySuite gives.
func IsSecuritySuite(s string) bool {
	return strings.HasSuffix(s, "-security") || strings.HasSuffix(s, "/updates")
}
