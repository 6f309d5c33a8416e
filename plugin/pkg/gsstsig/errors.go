package gsstsig

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// Reason classifies an Error.
type Reason int

// The reasons a GSS-TSIG exchange fails that the operator can act on.
const (
	ReasonOther        Reason = iota
	ReasonNoCredential        // no ticket (cache missing, empty or expired), or no keytab key
	ReasonClockSkew           // the clocks of this machine and the KDC or DNS server differ too much
	ReasonUnknownSPN          // the KDC knows no such DNS service principal
	ReasonRefused             // the server took the context but refused the update (the zone's ACL)
	ReasonBadServer           // the server's answers are malformed, unsigned or wrongly signed
	ReasonContextLost         // the server no longer knows the context (TSIG BADKEY): negotiate again
)

// Error is a GSS-TSIG failure with its reason and advice.
type Error struct {
	Reason Reason
	Msg    string // what happened, in the operator's words
	Err    error  // the underlying error, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// fail builds an *Error.
func fail(r Reason, err error, format string, args ...any) *Error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...), Err: err}
}

// kerberosError turns a Kerberos error met while getting a ticket for spn into an *Error.
func kerberosError(err error, spn string) *Error {
	var ke messages.KRBError
	if errors.As(err, &ke) {
		return krbError(ke, spn)
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "KRB_AP_ERR_SKEW") || strings.Contains(s, "KRB_AP_ERR_TKT_NYV"):
		return fail(ReasonClockSkew, nil, "the clocks of this machine and the domain controller differ by more than Kerberos allows (5 minutes): set this machine's time (NTP) and try again")
	case strings.Contains(s, "KDC_ERR_S_PRINCIPAL_UNKNOWN"):
		return fail(ReasonUnknownSPN, nil, "the KDC knows no service principal %s: give the DNS server's own host name (the SOA's primary, e.g. dc1.corp.example) with --gss-server-name", spn)
	case strings.Contains(s, "TKT_EXPIRED") || strings.Contains(s, "KDC_ERR_C_PRINCIPAL_UNKNOWN") || strings.Contains(s, "KDC_ERR_PREAUTH_FAILED"):
		return fail(ReasonNoCredential, nil, "Kerberos refused these credentials (%s): run kinit again, or check the keytab and principal", firstKRBCode(s))
	}
	return fail(ReasonOther, err, "getting a Kerberos ticket for %s failed", spn)
}

// krbError maps a KRB-ERROR message.
func krbError(ke messages.KRBError, spn string) *Error {
	switch ke.ErrorCode {
	case errorcode.KRB_AP_ERR_SKEW, errorcode.KRB_AP_ERR_TKT_NYV:
		return fail(ReasonClockSkew, nil, "the clocks of this machine and the domain controller differ by more than Kerberos allows (5 minutes): set this machine's time (NTP) and try again")
	case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		return fail(ReasonUnknownSPN, nil, "the KDC knows no service principal %s: give the DNS server's own host name (the SOA's primary, e.g. dc1.corp.example) with --gss-server-name", spn)
	case errorcode.KRB_AP_ERR_TKT_EXPIRED:
		return fail(ReasonNoCredential, nil, "the Kerberos ticket has expired: run kinit again")
	case errorcode.KRB_AP_ERR_MODIFIED, errorcode.KRB_AP_ERR_NOT_US:
		return fail(ReasonUnknownSPN, nil, "the DNS server could not read a ticket for %s: it is not that service (give its own host name with --gss-server-name)", spn)
	}
	return fail(ReasonOther, nil, "Kerberos error %d (%s) for %s", ke.ErrorCode, errorcode.Lookup(ke.ErrorCode), spn)
}

// firstKRBCode picks the first KDC_ERR_/KRB_AP_ERR_ name out of a gokrb5 error text.
func firstKRBCode(s string) string {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ':' || r == '(' || r == ')' }) {
		if strings.HasPrefix(f, "KDC_ERR_") || strings.HasPrefix(f, "KRB_AP_ERR_") || strings.HasPrefix(f, "KRB_ERR_") {
			return f
		}
	}
	return "see the error"
}
