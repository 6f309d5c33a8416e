// Package refusal is the contract between the vlmcs plugin and the
// registering kms-responder for saying why a registration (RFC 2136 UPDATE)
// was refused: a fixed set of reason codes, carried in an Extended DNS Error
// (RFC 8914) whose EXTRA-TEXT is "REASON: detail".
//
// The plugin labels its updates metric with the reason and writes the EDE;
// the responder reads it back, logs the text and counts refusals by reason.
// The reason set is fixed so that a metric label taken from a DNS server's
// answer cannot grow without bound.
package refusal

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
)

// Reasons an update is refused (and "ok" for an accepted one).
const (
	OK               = "ok"
	Format           = "format"
	NotZone          = "notzone"
	BadKey           = "tsig-badkey"
	BadSig           = "tsig-badsig"
	BadTime          = "tsig-badtime"
	Unsigned         = "unsigned"
	Outside          = "outside"
	DeleteAll        = "delete-all"
	UnapprovedTarget = "unapproved-target"
	UnapprovedAddr   = "unapproved-address"
	ForeignAddr      = "foreign-address"
	NotGranted       = "key-not-granted"
	Prereq           = "prerequisite"
	Replay           = "replay"
	Full             = "pool-full"
	Transport        = "transport"
	Signed           = "signed-owner"
	BeforeStart      = "before-start"
	UnapprovedPort   = "unapproved-port"
	MemberLimit      = "member-limit"
	ForeignTarget    = "foreign-target"
	BadName          = "bad-name"
	Static           = "static"
	ReplayFull       = "replay-full"
	// Other is what Reason returns for text that names no known reason.
	Other = "other"
)

var known = map[string]bool{
	OK: true, Format: true, NotZone: true, BadKey: true, BadSig: true, BadTime: true, Unsigned: true,
	Outside: true, DeleteAll: true, UnapprovedTarget: true, UnapprovedAddr: true, ForeignAddr: true,
	NotGranted: true, Prereq: true, Replay: true, Full: true, Transport: true, Signed: true,
	BeforeStart: true, UnapprovedPort: true, MemberLimit: true, ForeignTarget: true, BadName: true, Static: true,
	ReplayFull: true,
}

// maxText bounds EXTRA-TEXT, both written and read.
const maxText = 256

// EDE returns the Extended DNS Error for a refusal: Prohibited for policy
// refusals, Other for the rest, with "reason: detail" as EXTRA-TEXT (cut to
// 256 bytes, control characters replaced).
func EDE(reason, detail string) *dns.EDNS0_EDE {
	code := dns.ExtendedErrorCodeProhibited
	switch reason {
	case Format, NotZone, Prereq, Transport:
		code = dns.ExtendedErrorCodeOther
	}
	return &dns.EDNS0_EDE{InfoCode: code, ExtraText: Clean(reason + ": " + detail)}
}

// Reason returns the reason code at the start of an EXTRA-TEXT written by
// EDE, or Other.
func Reason(text string) string {
	r, _, ok := strings.Cut(text, ":")
	if ok && known[r] {
		return r
	}
	return Other
}

// Clean makes text safe to log, store and print: every character that
// is not printable (package printable: C0, DEL, C1, format characters
// such as bidi overrides, invalid UTF-8) becomes "?", at most 256 bytes.
func Clean(text string) string {
	text = printable.Replace(text, '?')
	if len(text) > maxText {
		cut := maxText
		for cut > 0 && !utf8Start(text[cut]) {
			cut--
		}
		text = text[:cut] + "..."
	}
	return text
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
