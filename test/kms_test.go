package test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/rpc"
)

// kmsHost is a real DCE/RPC endpoint on loopback (the responder's rpc package) that the
// plugin's probes bind to, standing in for a KMS host's port.
type kmsHost struct {
	ln   net.Listener
	srv  *rpc.Server
	Port int
}

// startKMS serves DCE/RPC on addr ("127.0.0.1:0" for any port).
func startKMS(t testing.TB, addr string) *kmsHost {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	k := &kmsHost{ln: ln, Port: ln.Addr().(*net.TCPAddr).Port}
	k.srv = rpc.NewServer(rpc.HandlerFunc(func(context.Context, netip.AddrPort, []byte) ([]byte, uint32) {
		return nil, 0x8007000D
	}), rpc.ServerConfig{})
	go k.srv.Serve(context.Background(), ln)
	t.Cleanup(k.Stop)
	return k
}

// Stop closes the endpoint; probes fail from then on.
func (k *kmsHost) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	k.srv.Shutdown(ctx)
	k.ln.Close()
}

// restart serves again on the same port.
func (k *kmsHost) restart(t testing.TB) *kmsHost {
	return startKMS(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(k.Port)))
}
