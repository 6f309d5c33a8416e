package testkit

import (
	"encoding/binary"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Application and KMS counted IDs as the catalog lists them.
var (
	AppWindows = guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f")
	AppOffice  = guid.MustParse("0ff1ce15-a989-479d-af46-f275c6370663")
	// KMSWin10 is the KMS counted ID of Windows 10/11 volume editions.
	KMSWin10 = guid.MustParse("58e2134f-8e11-4d17-9cb2-91069c151148")
)

// CMID returns a distinct, random-looking client machine ID for i.
func CMID(i int) guid.GUID {
	var g guid.GUID
	binary.BigEndian.PutUint64(g[:], uint64(i)*0x9E3779B97F4A7C15)
	binary.BigEndian.PutUint64(g[8:], uint64(i))
	return g
}
