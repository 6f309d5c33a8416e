package serve

import (
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
)

func TestWildcardPort(t *testing.T) {
	tests := []struct {
		in   string
		port uint16
		ok   bool
	}{
		{":1688", 1688, true},
		{":65535", 65535, true},
		{":0", 0, false},
		{":65536", 0, false},
		{":", 0, false},
		{":-1", 0, false},
		{":16a8", 0, false},
		{"127.0.0.1:1688", 0, false},
		{"[::]:1688", 0, false},
		{"1688", 0, false},
	}
	for _, tc := range tests {
		port, ok := WildcardPort(tc.in)
		if port != tc.port || ok != tc.ok {
			t.Errorf("WildcardPort(%q) = %d, %t; want %d, %t", tc.in, port, ok, tc.port, tc.ok)
		}
	}
}

// TestOpenListenersWildcard opens :PORT as two sockets, 0.0.0.0 (tcp4) and
// [::] (tcp6), and fails with "address already in use" when the port is
// taken on either family.
func TestOpenListenersWildcard(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	port := harness.FreeWildcardPort(t)
	lns, err := openListeners([]string{":" + strconv.Itoa(port)}, log)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ln := range lns {
		got = append(got, ln.Addr().Network()+" "+ln.Addr().String())
	}
	want := "tcp 0.0.0.0:" + strconv.Itoa(port) + ", tcp [::]:" + strconv.Itoa(port)
	if strings.Join(got, ", ") != want {
		t.Errorf("listeners %v, want %s", got, want)
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			t.Errorf("dial %s: %v", host, err)
			continue
		}
		c.Close()
	}
	closeAll(lns)

	taken, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tp := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	if lns, err := openListeners([]string{":" + tp}, log); err == nil || !strings.Contains(err.Error(), "address already in use") {
		closeAll(lns)
		t.Errorf("openListeners on a taken port: %v, want address already in use", err)
	}
}
