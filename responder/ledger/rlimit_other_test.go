//go:build !linux

package ledger

import "errors"

var errNoFileSizeLimit = errors.New("file size limits are not supported here")

func setFileSizeLimit(uint64) error { return errNoFileSizeLimit }
