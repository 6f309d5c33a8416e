// Package ad holds kmsdns's end-to-end tests against a real Active Directory domain controller
// (Samba AD DC, test/samba): secure dynamic updates by GSS-TSIG, scrubbing through vlmcs,
// discovery, audit and doctor. The package runs as root inside its own network namespace.
package ad

import (
	"os"
	"testing"

	"github.com/kmsdns/kmsdns/test/samba"
)

// dc is the package's domain controller, started once by TestMain (nil with -short).
var dc *samba.DC

func TestMain(m *testing.M) { os.Exit(samba.Main(m, &dc)) }
