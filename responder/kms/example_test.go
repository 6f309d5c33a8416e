package kms_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/kms"
)

// A client builds a V6 request, a host answers it, and the client verifies
// the answer.
func Example() {
	req := &kms.Request{
		MajorVersion:        6,
		ApplicationID:       guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f"),
		KMSCountedID:        guid.MustParse("58e2134f-8e11-4d17-9cb2-91069c151148"),
		ClientMachineID:     guid.MustParse("01020304-0506-4708-890a-0b0c0d0e0f10"),
		RequiredClientCount: 25,
		WorkstationName:     "client",
	}
	req.SetTime(time.Now())
	wire, pending, err := kms.BuildRequest(req, rand.Reader)
	if err != nil {
		panic(err)
	}

	// Host side.
	in, err := kms.ParseRequest(wire)
	if err != nil {
		var h kms.HRESULT
		if errors.As(err, &h) {
			fmt.Println("answer with", h)
		}
		return
	}
	answer, err := in.AppendResponse(nil, &kms.Response{
		EPID:               "03612-00206-555-926461-03-1088-14393.0000-0172022",
		CurrentCount:       2 * in.Request.RequiredClientCount,
		ActivationInterval: 120,
		RenewalInterval:    10080,
		HwID:               [8]byte{0x3A, 0x1C, 0x04, 0x96, 0x00, 0xB6, 0x00, 0x76},
	}, rand.Reader)
	if err != nil {
		panic(err)
	}

	// Client side.
	resp, err := pending.ParseResponse(answer)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d-byte request, %d-byte response\n", len(wire), len(answer))
	fmt.Println(resp.EPID, resp.CurrentCount, resp.ClientMachineID)
	// Output:
	// 260-byte request, 260-byte response
	// 03612-00206-555-926461-03-1088-14393.0000-0172022 50 01020304-0506-4708-890a-0b0c0d0e0f10
}
