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
	// ErrClientTableFull (SL_REMAPPING_SP_STATUS_INVALIDARG) is what some
	// hosts return when their client table overflows.
	ErrClientTableFull HRESULT = 0xC004D104
)

var hresultNames = map[HRESULT]string{
	OK:                  "S_OK",
	ErrInvalidData:      "ERROR_INVALID_DATA",
	ErrKMSIDMismatch:    "SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH",
	ErrInvalidTimestamp: "SL_E_VL_INVALID_TIMESTAMP",
	ErrNotEnoughCount:   "SL_E_VL_NOT_ENOUGH_COUNT",
	ErrNoKMSContacted:   "SL_E_VL_BINDING_SERVICE_UNAVAILABLE",
	ErrDNSNameNotExist:  "DNS_ERROR_RCODE_NAME_ERROR",
	ErrDNSNoRecords:     "DNS_INFO_NO_RECORDS",
	ErrClientTableFull:  "SL_REMAPPING_SP_STATUS_INVALIDARG",
}

// Name returns the symbolic name of h, or "" when unknown.
func (h HRESULT) Name() string { return hresultNames[h] }

// Error formats h as "0xC004F042 (SL_E_VL_...)".
func (h HRESULT) Error() string {
	if n := h.Name(); n != "" {
		return fmt.Sprintf("0x%08X (%s)", uint32(h), n)
	}
	return fmt.Sprintf("0x%08X", uint32(h))
}
