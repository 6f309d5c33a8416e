package dcerpc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// echoPrefix is prepended by echoHandler to every answer.
const echoPrefix = "echo:"

// failPrefix makes echoHandler answer with statusFail.
const failPrefix = "fail"

const statusFail = 0xC004F042

// echoHandler answers "echo:"+request, or statusFail for requests that
// start with "fail". It records the peers it saw.
type echoHandler struct {
	mu    sync.Mutex
	peers []netip.AddrPort
}

func (e *echoHandler) ServeKMS(ctx context.Context, peer netip.AddrPort, req []byte) ([]byte, uint32) {
	e.mu.Lock()
	e.peers = append(e.peers, peer)
	e.mu.Unlock()
	if bytes.HasPrefix(req, []byte(failPrefix)) {
		return []byte("ignored"), statusFail
	}
	return append([]byte(echoPrefix), req...), 0
}

// startServer serves h on a loopback listener of the given network
// ("tcp4" → 127.0.0.1, "tcp6" → [::1]) and stops it when the test ends.
func startServer(t testing.TB, network string, h Handler, cfg ServerConfig) (*Server, string) {
	t.Helper()
	host := "127.0.0.1"
	if network == "tcp6" {
		host = "[::1]"
	}
	ln, err := net.Listen(network, host+":0")
	if err != nil {
		if network == "tcp6" {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatal(err)
	}
	s := NewServer(h, cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

func payloadOf(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		server     ServerConfig
		client     ClientConfig
		want32     bool
		want64     bool
		wantAlter  bool
		wantSyntax []Syntax // per call
	}{
		{"windows-like", ServerConfig{}, ClientConfig{}, true, true, true, []Syntax{NDR32, NDR64, NDR64}},
		{"client NDR32 only", ServerConfig{}, ClientConfig{DisableNDR64: true}, true, false, false, []Syntax{NDR32, NDR32}},
		{"server NDR32 only", ServerConfig{DisableNDR64: true}, ClientConfig{}, true, false, false, []Syntax{NDR32, NDR32}},
		{"no BTFN", ServerConfig{}, ClientConfig{DisableBTFN: true}, true, true, true, []Syntax{NDR32, NDR64}},
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				h := &echoHandler{}
				_, addr := startServer(t, network, h, tt.server)
				ctx := context.Background()
				c, err := Dial(ctx, "tcp", addr, tt.client)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				info := c.BindInfo()
				if info.NDR32 != tt.want32 || info.NDR64 != tt.want64 || info.AlterContext != tt.wantAlter {
					t.Errorf("BindInfo = %+v, want NDR32 %v NDR64 %v alter %v", info, tt.want32, tt.want64, tt.wantAlter)
				}
				_, port, _ := net.SplitHostPort(addr)
				if info.SecAddr != port {
					t.Errorf("SecAddr = %q, want the server port %q", info.SecAddr, port)
				}
				if !tt.client.DisableBTFN && info.Features != 3 {
					t.Errorf("BTFN features = %d, want 3", info.Features)
				}
				for i, want := range tt.wantSyntax {
					// 252 and 260 are the V4 and V5/V6 request sizes; 251 needs padding.
					p := payloadOf([]int{252, 260, 251}[i%3], byte(i))
					resp, status, err := c.Call(ctx, p)
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
					if status != 0 {
						t.Fatalf("call %d: status 0x%08X", i, status)
					}
					if !bytes.Equal(resp, append([]byte(echoPrefix), p...)) {
						t.Fatalf("call %d: response %x", i, resp)
					}
					if got := c.LastSyntax(); got != want {
						t.Errorf("call %d used %v, want %v", i, got, want)
					}
				}
				// An HRESULT comes back as status with no payload, and the
				// connection stays usable.
				resp, status, err := c.Call(ctx, []byte(failPrefix+"please"))
				if err != nil || status != statusFail || resp != nil {
					t.Fatalf("failing call = %x, 0x%08X, %v; want nil, 0x%08X, nil", resp, status, err, uint32(statusFail))
				}
				resp, status, err = c.Call(ctx, []byte("after"))
				if err != nil || status != 0 || string(resp) != echoPrefix+"after" {
					t.Fatalf("call after failure = %q, 0x%08X, %v", resp, status, err)
				}
				h.mu.Lock()
				defer h.mu.Unlock()
				local := addrPort(c.LocalAddr())
				for _, p := range h.peers {
					if p != local {
						t.Errorf("handler saw peer %v, want %v", p, local)
					}
				}
			})
		}
	}
}

func TestManyRequestsPerConnection(t *testing.T) {
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{})
	c, err := Dial(context.Background(), "tcp", addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 200 {
		p := payloadOf(260, byte(i))
		resp, status, err := c.Call(context.Background(), p)
		if err != nil || status != 0 || !bytes.Equal(resp[len(echoPrefix):], p) {
			t.Fatalf("call %d: %x 0x%08X %v", i, resp, status, err)
		}
	}
}

func TestProbe(t *testing.T) {
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{})
	if err := Probe(context.Background(), addr, time.Second); err != nil {
		t.Fatalf("Probe(%s) = %v", addr, err)
	}
	// A closed port fails.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if err := Probe(context.Background(), dead, time.Second); err == nil {
		t.Fatalf("Probe(%s) on a closed port succeeded", dead)
	}
}

func TestHandlerClosesConnection(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, peer netip.AddrPort, req []byte) ([]byte, uint32) {
		return nil, StatusCloseConnection
	})
	_, addr := startServer(t, "tcp4", h, ServerConfig{})
	c, err := Dial(context.Background(), "tcp", addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, status, err := c.Call(context.Background(), []byte("payload"))
	if err == nil {
		t.Fatalf("Call answered (status %#x, %d bytes); want the connection closed without an answer", status, len(resp))
	}
}
