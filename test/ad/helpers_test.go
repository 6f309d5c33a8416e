package ad

import (
	"bytes"
	"errors"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
	"github.com/kmsdns/kmsdns/test/samba"
)

// needDC skips under -short (no DC started) and returns the package's DC.
func needDC(t *testing.T) *samba.DC {
	t.Helper()
	if dc == nil {
		t.Skip("needs the Samba AD DC; skipped with -short")
	}
	return dc
}

// nsupdate sends script (update lines) to the DC's corp.example zone, by GSS-TSIG with the
// ticket in $KRB5CCNAME when gss is set (as a Windows machine registers), unsigned otherwise.
func nsupdate(t *testing.T, gss bool, script string) (int, string) {
	t.Helper()
	var args []string
	if gss {
		args = append(args, "-g")
	}
	cmd := exec.Command(harness.Tool(t, "nsupdate"), args...)
	cmd.Stdin = strings.NewReader("server " + samba.DCAddr + "\nzone " + samba.Domain + "\n" + script + "\nsend\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("nsupdate: %v", err)
		}
		return ee.ExitCode(), string(out)
	}
	return 0, string(out)
}

// register adds records to the DC by GSS-TSIG and waits until the DC serves them.
func register(t *testing.T, lines ...string) {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString("update add " + l + "\n")
	}
	code, out := nsupdate(t, true, b.String())
	for _, l := range lines {
		f := strings.Fields(l)
		name, typ := f[0], dns.StringToType[strings.ToUpper(f[2])]
		if len(lookup(t, name, typ)) == 0 {
			t.Fatalf("GSS-TSIG registration of %q did not land (nsupdate -g exit %d):\n%s", l, code, out)
		}
	}
}

// lookup asks the DC for name/type and returns the answers' data, sorted.
func lookup(t *testing.T, name string, qtype uint16) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, needDC(t).DNSAddr())
	if err != nil {
		t.Fatalf("query %s %s at the DC: %v", name, dns.TypeToString[qtype], err)
	}
	var out []string
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
		}
	}
	sort.Strings(out)
	return out
}
