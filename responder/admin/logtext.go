package admin

import (
	"strings"
	"unicode/utf8"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
)

// maxLoggedText bounds one client-chosen field of an admin log line.
const maxLoggedText = 200

// clientText is text a requester chose (the Host header, the URL path) as
// it may be logged: escaped (plugin/pkg/printable: C0, C1 such as U+009B,
// bidi overrides such as U+202E become visible escapes, which JSON and
// text logs alike pass on as inert text) and cut to maxLoggedText bytes
// with "..." marking the cut.
func clientText(s string) string {
	e := printable.Escape(s)
	if len(e) <= maxLoggedText {
		return e
	}
	// Cut between characters of s, never inside an escape.
	var b strings.Builder
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		c := printable.Escape(s[i : i+n])
		if b.Len()+len(c) > maxLoggedText {
			break
		}
		b.WriteString(c)
		i += n
	}
	return b.String() + "..."
}
