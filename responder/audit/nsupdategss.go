package audit

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// WriteNSUpdateGSS writes WriteNSUpdate's script for a zone that takes secure updates only:
// each update is signed by GSS-TSIG (nsupdate's `gsstsig` command, as `nsupdate -g`) with
// the Kerberos ticket of whoever runs it.
func (rep *Report) WriteNSUpdateGSS(w io.Writer) {
	var b bytes.Buffer
	rep.WriteNSUpdate(&b)
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "; Run:"):
			fmt.Fprintln(w, "; Run: kinit YOU@REALM && nsupdate -g THIS-FILE   (GSS-TSIG: the secure dynamic update of Active Directory;")
			fmt.Fprintln(w, ";      your account must be allowed to change the records: their owner, Domain Admins or DnsAdmins)")
			continue
		case strings.HasPrefix(line, "server "):
			fmt.Fprintln(w, line)
			fmt.Fprintln(w, "gsstsig")
			continue
		}
		fmt.Fprintln(w, line)
	}
}
