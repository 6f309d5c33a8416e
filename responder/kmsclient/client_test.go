package kmsclient

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/kms"
)

var windows10 = Product{
	Name:      "Windows 10/11 Enterprise",
	AppID:     guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f"),
	KMSID:     guid.MustParse("58e2134f-8e11-4d17-9cb2-91069c151148"),
	SKUID:     guid.MustParse("73111121-5638-40f6-bc11-f1d7b0d64300"),
	Threshold: 25,
	Protocol:  6,
}

// host is a minimal KMS host for these tests: a fixed count, or an HRESULT,
// or a response corrupted after encoding.
type host struct {
	count   uint32
	status  kms.HRESULT
	corrupt bool
}

func (h host) ServeKMS(ctx context.Context, peer netip.AddrPort, request []byte) ([]byte, uint32) {
	if h.status != 0 {
		return nil, uint32(h.status)
	}
	in, err := kms.ParseRequest(request)
	if err != nil {
		return nil, uint32(kms.ErrInvalidData)
	}
	out, err := in.AppendResponse(nil, &kms.Response{
		EPID:               "03612-00206-555-926461-03-1033-26100.0000-3262026",
		CurrentCount:       h.count,
		ActivationInterval: 120,
		RenewalInterval:    10080,
		HwID:               [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
	}, rand.Reader)
	if err != nil {
		return nil, uint32(kms.ErrInvalidData)
	}
	if h.corrupt {
		out[len(out)-1] ^= 0x01
	}
	return out, 0
}

func serve(t *testing.T, h dcerpc.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := dcerpc.NewServer(h, dcerpc.ServerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func TestActivateVerdicts(t *testing.T) {
	tests := []struct {
		name        string
		host        host
		protocol    int
		wantVerdict kms.HRESULT
		wantErr     error
		wantVerify  bool
	}{
		{"count reached V6", host{count: 25}, 6, kms.OK, nil, false},
		{"count reached V5", host{count: 50}, 5, kms.OK, nil, false},
		{"count reached V4", host{count: 30}, 4, kms.OK, nil, false},
		{"below threshold", host{count: 3}, 6, kms.ErrNotEnoughCount, nil, false},
		{"host refuses product", host{status: kms.ErrKMSIDMismatch}, 6, kms.ErrKMSIDMismatch, kms.ErrKMSIDMismatch, false},
		{"host refuses clock", host{status: kms.ErrInvalidTimestamp}, 6, kms.ErrInvalidTimestamp, kms.ErrInvalidTimestamp, false},
		{"tampered V6 response", host{count: 25, corrupt: true}, 6, 0, nil, true},
		{"tampered V4 response", host{count: 25, corrupt: true}, 4, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, tc.host)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := NewRequest(windows10, tc.protocol, RandomCMID(), "test-client", time.Now())
			out, err := Activate(ctx, c, req, nil)
			if tc.wantVerify {
				var ve *kms.VerifyError
				if out != nil || !errors.As(err, &ve) {
					t.Fatalf("Activate = %+v, %v; want a verification error and no outcome", out, err)
				}
				return
			}
			if tc.wantErr != nil {
				if h, ok := IsHostRefusal(err); !ok || h != tc.wantErr {
					t.Fatalf("err = %v, want host refusal %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if out.Verdict != tc.wantVerdict {
				t.Fatalf("verdict = %v, want %v", out.Verdict, tc.wantVerdict)
			}
			if out.Activated() != (tc.wantVerdict == kms.OK) {
				t.Fatalf("Activated() = %v", out.Activated())
			}
			if tc.wantVerdict == kms.OK && out.Response.ClientMachineID != req.ClientMachineID {
				t.Fatalf("CMID not echoed")
			}
		})
	}
}

func TestRandomCMIDIsVersion4(t *testing.T) {
	a, b := RandomCMID(), RandomCMID()
	if a == b {
		t.Fatal("two random CMIDs are equal")
	}
	c := a.Canonical()
	if c[6]>>4 != 4 || c[8]>>6 != 2 {
		t.Fatalf("%s is not an RFC 4122 version-4 GUID", a)
	}
}

func TestDeriveCMIDIsStableAndVersion4(t *testing.T) {
	a, b := DeriveCMID("0123456789abcdef0123456789abcdef"), DeriveCMID("0123456789abcdef0123456789abcdef")
	if a != b {
		t.Fatalf("same machine, two IDs: %s, %s", a, b)
	}
	if c := DeriveCMID("fedcba9876543210fedcba9876543210"); c == a {
		t.Fatalf("two machines, one ID %s", a)
	}
	s := a.String()
	if s[14] != '4' || !strings.ContainsRune("89ab", rune(s[19])) {
		t.Errorf("%s is not shaped as a version-4 GUID", s)
	}
	if m, _, err := MachineCMID(); err != nil || m == (guid.GUID{}) {
		t.Errorf("MachineCMID: %s, %v", m, err)
	}
}
