package kms

import "fmt"

// RequestError reports a request a host must refuse. It unwraps to the
// HRESULT the host returns to the client, so errors.As(err, &h) with an
// HRESULT h yields the code.
type RequestError struct {
	// Code is the HRESULT to return (ErrInvalidData for malformed input).
	Code HRESULT
	// Reason says what is wrong and where.
	Reason string
}

// Error implements error.
func (e *RequestError) Error() string {
	return "kms: request refused with " + e.Code.Error() + ": " + e.Reason
}

// Unwrap returns the HRESULT.
func (e *RequestError) Unwrap() error { return e.Code }

func invalidData(format string, args ...any) error {
	return &RequestError{Code: ErrInvalidData, Reason: fmt.Sprintf(format, args...)}
}

// VerifyError reports a response that fails a client-side check.
type VerifyError struct {
	// Field names the failed check: "size", "padding", "version", "epid",
	// "cmid", "client-time", "iv", "hash", "xored-ivs", "hmac" or "mac".
	Field string
	// Reason says what was found.
	Reason string
}

// Error implements error.
func (e *VerifyError) Error() string {
	return "kms: response check " + e.Field + " failed: " + e.Reason
}

func verifyErr(field, format string, args ...any) error {
	return &VerifyError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
