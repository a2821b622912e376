package recipes

import "github.com/krgimage/krgimage/internal/debarchive"

// Suite facts krgimage needs to pick file formats and packages. Unknown
// suite names (derivatives, future releases) are treated as current ones.

var suiteOrder = map[string]int{
	"buzz": 1, "rex": 1, "bo": 1, "hamm": 2, "slink": 2, "potato": 2,
	"woody": 3, "sarge": 3, "etch": 4, "lenny": 5, "squeeze": 6,
	"wheezy": 7, "jessie": 8, "stretch": 9, "buster": 10, "bullseye": 11,
	"bookworm": 12, "trixie": 13, "forky": 14, "duke": 15,
	"testing": 99, "unstable": 99, "sid": 99,
}

// SuiteVersion returns the Debian major version of a suite name, or 99
// when the name is unknown.
func SuiteVersion(suite string) int {
	if v, ok := suiteOrder[suite]; ok {
		return v
	}
	return 99
}

// Legacy reports whether the suite predates squeeze: dhcp3-server,
// tftpd-hpa's RUN_DAEMON form, sysvinit, nfsbooted, one-line APT sources,
// and a security archive named SUITE/updates.
func Legacy(suite string) bool { return SuiteVersion(suite) <= 5 }

// Systemd reports whether the suite boots with systemd by default.
func Systemd(suite string) bool { return SuiteVersion(suite) >= 8 }

// MergedUsr reports whether the suite expects /bin, /sbin and /lib to be
// symbolic links into /usr.
func MergedUsr(suite string) bool { return SuiteVersion(suite) >= 12 }

// SecuritySuite names the security archive's suite for a release
// (debarchive.SecuritySuite holds the rule).
func SecuritySuite(suite string) string {
	return debarchive.SecuritySuite(suite, SuiteVersion(suite))
}
