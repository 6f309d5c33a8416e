// Package gsstsig signs DNS messages with GSS-TSIG (RFC 3645), the secure dynamic update of
// Active Directory: a Kerberos security context is set up with the DNS server by TKEY
// (RFC 2930, mode 3: GSS-API, SPNEGO carrying a Kerberos AP-REQ/AP-REP), and every later
// message in either direction carries a TSIG record of algorithm gss-tsig whose MAC is a GSS
// MIC token (RFC 4121) over the TSIG digest input.
//
// The Kerberos side is pure Go (github.com/jcmturner/gokrb5/v8): the operator's credential
// cache (KRB5CCNAME, as after kinit) or a keytab and principal, and krb5.conf for the realm's
// KDCs. Failures are returned as *Error, whose text says in the operator's words what went
// wrong and what to do: no ticket, clock skew, an unknown service principal, a refused update.
//
// What a DNS server controls here: the TKEY answer (parsed by ParseTKEYAnswer, then the SPNEGO
// and AP-REP tokens inside it, decrypted with the ticket's session key before anything in it is
// used) and the TSIG record of every answer (its MIC is verified before the answer counts).
package gsstsig
