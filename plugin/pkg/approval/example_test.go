package approval_test

import (
	"fmt"
	"net/netip"

	"github.com/kmsdns/kmsdns/plugin/pkg/approval"
)

func Example() {
	r, err := approval.Parse("*.kms.corp.test", "10.0.0.0/24", "kms1.corp.test=192.0.2.5")
	if err != nil {
		panic(err)
	}
	ip := netip.MustParseAddr
	fmt.Println(r.Check("a.kms.corp.test.", []netip.Addr{ip("10.0.0.7")}))
	fmt.Println(r.Check(`evil\.kms.corp.test.`, nil))
	fmt.Println(r.Check("KMS1.corp.test", []netip.Addr{ip("10.0.0.7")}))
	fmt.Println(r.Bound("kms1.corp.test"))
	// Output:
	// <nil>
	// name not approved: "evil\.kms.corp.test." is not a host name: label "evil.kms" holds a byte other than a letter, digit, hyphen or underscore
	// address not approved: 10.0.0.7 is not an address bound to KMS1.corp.test (192.0.2.5)
	// [192.0.2.5]
}
