package testkit

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
)

// KMSHost is a real DCE/RPC endpoint on loopback (the responder's rpc
// package) standing in for a KMS host's port: the plugin's probes bind to
// it for real. Requests are answered with a fault.
type KMSHost struct {
	ln   net.Listener
	srv  *dcerpc.Server
	Port int
}

// StartKMS serves DCE/RPC on addr ("127.0.0.1:0" for any port) until the
// test ends or Stop is called.
func StartKMS(t testing.TB, addr string) *KMSHost {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	k := &KMSHost{ln: ln, Port: ln.Addr().(*net.TCPAddr).Port}
	k.srv = dcerpc.NewServer(dcerpc.HandlerFunc(func(context.Context, netip.AddrPort, []byte) ([]byte, uint32) {
		return nil, 0x8007000D
	}), dcerpc.ServerConfig{})
	go func() { _ = k.srv.Serve(context.Background(), ln) }()
	t.Cleanup(k.Stop)
	return k
}

// Stop closes the endpoint; probes fail from then on.
func (k *KMSHost) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = k.srv.Shutdown(ctx)
	_ = k.ln.Close()
}

// Restart serves again on the same loopback port.
func (k *KMSHost) Restart(t testing.TB) *KMSHost {
	t.Helper()
	return StartKMS(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(k.Port)))
}

// PortString is Port in decimal.
func (k *KMSHost) PortString() string { return strconv.Itoa(k.Port) }
