package dcerpc_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
)

// A KMS responder serves RequestActivation calls; a client binds like
// Windows and calls it. Here the "KMS layer" upper-cases ASCII.
func Example() {
	handler := dcerpc.HandlerFunc(func(ctx context.Context, peer netip.AddrPort, req []byte) ([]byte, uint32) {
		if len(req) == 0 {
			return nil, 0x8007000D // ERROR_INVALID_DATA, sent as the call's return value
		}
		out := make([]byte, len(req))
		for i, c := range req {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out[i] = c
		}
		return out, 0
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := dcerpc.NewServer(handler, dcerpc.ServerConfig{})
	go srv.Serve(context.Background(), ln)
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	c, err := dcerpc.Dial(ctx, "tcp", ln.Addr().String(), dcerpc.ClientConfig{})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	info := c.BindInfo()
	fmt.Println("NDR32:", info.NDR32, "NDR64:", info.NDR64, "via alter_context:", info.AlterContext)
	for _, req := range []string{"hello", "again", ""} {
		resp, status, err := c.Call(ctx, []byte(req))
		fmt.Printf("%q -> %q status 0x%08X err %v over %v\n", req, resp, status, err, c.LastSyntax())
	}
	// Output:
	// NDR32: true NDR64: true via alter_context: true
	// "hello" -> "HELLO" status 0x00000000 err <nil> over NDR32
	// "again" -> "AGAIN" status 0x00000000 err <nil> over NDR64
	// "" -> "" status 0x8007000D err <nil> over NDR64
}
