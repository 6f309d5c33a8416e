// Package kms encodes and decodes the KMS activation request and response
// messages (protocol versions 4, 5 and 6) with their cryptography.
package kms

import "fmt"

// HRESULT is a Windows status code as carried in the RPC stub's return value
// or reported by a client. It implements error.
type HRESULT uint32

// HRESULTs used by KMS hosts and clients.
const (
	// OK is success.
	OK HRESULT = 0
	// ErrInvalidData (ERROR_INVALID_DATA) answers an unsupported protocol
	// version, a short request, N_Policy > 1000 or a request whose MAC,
	// decryption or padding is invalid.
	ErrInvalidData HRESULT = 0x8007000D
	// ErrKMSIDMismatch (SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH): the host
	// key cannot activate this product (unknown, retail or other group).
	ErrKMSIDMismatch HRESULT = 0xC004F042
	// ErrInvalidTimestamp (SL_E_VL_INVALID_TIMESTAMP): client clock is more
	// than 4 hours from the host's.
	ErrInvalidTimestamp HRESULT = 0xC004F06C
	// ErrNotEnoughCount (SL_E_VL_NOT_ENOUGH_COUNT): client-side verdict when
	// the returned count is below the client's threshold.
	ErrNotEnoughCount HRESULT = 0xC004F038
	// ErrNoKMSContacted (SL_E_VL_BINDING_SERVICE_UNAVAILABLE, "no KMS could be
	// contacted"): client-side verdict when no host answered.
	ErrNoKMSContacted HRESULT = 0xC004F074
	// ErrDNSNameNotExist (DNS_ERROR_RCODE_NAME_ERROR): discovery got NXDOMAIN.
	ErrDNSNameNotExist HRESULT = 0x8007232B
	// ErrDNSNoRecords (DNS_INFO_NO_RECORDS): discovery got NODATA.
	ErrDNSNoRecords HRESULT = 0x8007251D
	// ErrDNSFormatError (DNS_ERROR_RCODE_FORMAT_ERROR): the DNS server
	// answered FORMERR.
	ErrDNSFormatError HRESULT = 0x80072329
	// ErrDNSServerFailure (DNS_ERROR_RCODE_SERVER_FAILURE): the DNS server
	// answered SERVFAIL.
	ErrDNSServerFailure HRESULT = 0x8007232A
	// ErrDNSNotImplemented (DNS_ERROR_RCODE_NOT_IMPLEMENTED): NOTIMP.
	ErrDNSNotImplemented HRESULT = 0x8007232C
	// ErrDNSRefused (DNS_ERROR_RCODE_REFUSED): the DNS server answered
	// REFUSED.
	ErrDNSRefused HRESULT = 0x8007232D
	// ErrClientTableFull (SL_REMAPPING_SP_STATUS_INVALIDARG) is what some
	// hosts return when their client table overflows.
	ErrClientTableFull HRESULT = 0xC004D104
)

// hresultInfo is what the project says about one HRESULT: its symbolic
// name, the value of the result label of the responder's request metric, and
// what it means to the person reading a tool's output. It is the one table of
// HRESULT names (as miekg/dns keeps RcodeToString).
type hresultInfo struct {
	name, label, meaning string
}

var hresults = map[HRESULT]hresultInfo{
	OK:                   {"S_OK", "activated", "activated"},
	ErrInvalidData:       {"ERROR_INVALID_DATA", "invalid_data", "the host could not read the request (protocol version, size, MAC or padding)"},
	ErrKMSIDMismatch:     {"SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH", "product_not_served", "this host's key group cannot activate the product"},
	ErrInvalidTimestamp:  {"SL_E_VL_INVALID_TIMESTAMP", "clock_skew", "the client's clock is more than 4 hours from the host's"},
	ErrNotEnoughCount:    {"SL_E_VL_NOT_ENOUGH_COUNT", "below_threshold", "the host's count is below this product's threshold; the client retries after the activation interval"},
	ErrNoKMSContacted:    {"SL_E_VL_BINDING_SERVICE_UNAVAILABLE", "no_host", "no KMS host could be contacted"},
	ErrDNSNameNotExist:   {"DNS_ERROR_RCODE_NAME_ERROR", "nxdomain", "the _VLMCS._TCP name does not exist in DNS (NXDOMAIN)"},
	ErrDNSNoRecords:      {"DNS_INFO_NO_RECORDS", "nodata", "the _VLMCS._TCP name has no SRV records (NODATA)"},
	ErrDNSFormatError:    {"DNS_ERROR_RCODE_FORMAT_ERROR", "formerr", "the DNS server could not read the query (FORMERR)"},
	ErrDNSServerFailure:  {"DNS_ERROR_RCODE_SERVER_FAILURE", "servfail", "the DNS server failed to answer (SERVFAIL): it cannot reach the zone's servers, or the zone is broken"},
	ErrDNSNotImplemented: {"DNS_ERROR_RCODE_NOT_IMPLEMENTED", "notimp", "the DNS server does not implement this query (NOTIMP)"},
	ErrDNSRefused:        {"DNS_ERROR_RCODE_REFUSED", "refused", "the DNS server refused the query (REFUSED): it is not authoritative for the domain and does not recurse for this client; ask the client's own resolver or fix its zones"},
	ErrClientTableFull:   {"SL_REMAPPING_SP_STATUS_INVALIDARG", "error", "the host's client table is full"},
}

// Name returns the symbolic name of h, or "" when unknown.
func (h HRESULT) Name() string { return hresults[h].name }

// Label returns h's value for a metric's result label ("activated",
// "product_not_served", ...); "error" for codes without one.
func (h HRESULT) Label() string {
	if l := hresults[h].label; l != "" {
		return l
	}
	return "error"
}

// Meaning says in words what h means to an administrator, or "" when
// unknown.
func (h HRESULT) Meaning() string { return hresults[h].meaning }

// Error formats h as "0xC004F042 (SL_E_VL_...)".
func (h HRESULT) Error() string {
	if n := h.Name(); n != "" {
		return fmt.Sprintf("0x%08X (%s)", uint32(h), n)
	}
	return fmt.Sprintf("0x%08X", uint32(h))
}
