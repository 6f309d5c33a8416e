package ledger

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

func sampleClient() Client {
	return Client{
		CMID:          guid.MustParse("b1e6a8f0-2c3d-4e5f-8a9b-0c1d2e3f4a5b"),
		App:           guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f"),
		CountedID:     guid.MustParse("58e2134f-8e11-4d17-9cb2-91069c151148"),
		SKU:           guid.MustParse("73111121-5638-40f6-bc11-f1d7b0d64300"),
		Workstation:   "PC-0001.corp.example",
		Source:        "192.0.2.7:50123",
		FirstSeen:     time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		LastSeen:      time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC),
		Requests:      42,
		LastResult:    0xC004F042,
		LicenseStatus: 2,
		Protocol:      6,
	}
}

func TestClientRoundTrip(t *testing.T) {
	long := strings.Repeat("é", MaxTextLen/2) // 254 bytes
	tests := []struct {
		name string
		mod  func(*Client)
	}{
		{"full", func(*Client) {}},
		{"empty strings", func(c *Client) { c.Workstation, c.Source = "", "" }},
		{"longest strings", func(c *Client) { c.Workstation, c.Source = long, long }},
		{"unicode", func(c *Client) { c.Workstation = "Рабочая-станция-工作站" }},
		{"before epoch", func(c *Client) { c.FirstSeen = time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC) }},
		{"max counters", func(c *Client) {
			c.Requests, c.LastResult, c.LicenseStatus, c.Protocol = ^uint32(0), ^uint32(0), ^uint32(0), 255
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sampleClient()
			tt.mod(&c)
			b := encodeClient(&c)
			if want := clientFixedLen + len(c.Workstation) + len(c.Source); len(b) != want {
				t.Fatalf("encoded length %d, want %d", len(b), want)
			}
			got, err := DecodeClient(b)
			if err != nil {
				t.Fatalf("DecodeClient: %v", err)
			}
			if !got.FirstSeen.Equal(c.FirstSeen) || !got.LastSeen.Equal(c.LastSeen) {
				t.Fatalf("times %v/%v, want %v/%v", got.FirstSeen, got.LastSeen, c.FirstSeen, c.LastSeen)
			}
			got.FirstSeen, got.LastSeen = c.FirstSeen, c.LastSeen
			if got != c {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
			}
		})
	}
}

func TestDecodeClientErrors(t *testing.T) {
	good := encodeClient(&Client{
		CMID: guid.MustParse("b1e6a8f0-2c3d-4e5f-8a9b-0c1d2e3f4a5b"), Workstation: "ws", Source: "src",
		FirstSeen: time.Unix(100, 0), LastSeen: time.Unix(200, 0),
	})
	patch := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return b
	}
	wsLen := clientFixedLen - 2
	tests := []struct {
		name   string
		in     []byte
		field  string
		offset int
		reason string
	}{
		{"empty", nil, "version", 0, "truncated: need 1 bytes, have 0"},
		{"version 0", patch(0, 0), "version", 0, "unsupported format version 0"},
		{"version 2", patch(0, 2), "version", 0, "unsupported format version 2"},
		{"cut in CMID", good[:10], "CMID", 1, "need 16 bytes, have 9"},
		{"cut in SKU", good[:50], "SKU ID", 49, "need 16 bytes, have 1"},
		{"cut in last seen", good[:80], "last seen", 73, "need 8 bytes, have 7"},
		{"cut before workstation", good[:wsLen], "workstation length", wsLen, "need 1 bytes, have 0"},
		{"workstation longer than value", patch(wsLen, 200), "workstation", wsLen + 1, "need 200 bytes"},
		{"workstation not UTF-8", patch(wsLen+1, 0xff), "workstation", wsLen + 1, "not valid UTF-8"},
		{"source missing", good[:wsLen+3], "source length", wsLen + 3, "need 1 bytes, have 0"},
		{"trailing byte", append(bytes.Clone(good), 0), "end", len(good), "1 unexpected trailing bytes"},
		{"last before first", patch(65, 0x7f), "last seen", 73, "is before first seen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeClient(tt.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			if de.Field != tt.field || de.Offset != tt.offset || !strings.Contains(de.Reason, tt.reason) {
				t.Fatalf("got field %q offset %d reason %q; want %q %d %q", de.Field, de.Offset, de.Reason, tt.field, tt.offset, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "ledger: client record: ") {
				t.Fatalf("error text %q lacks its prefix", err)
			}
		})
	}
}

// Every proper prefix of a valid record must be rejected, never accepted or
// panicking.
func TestDecodeClientEveryPrefix(t *testing.T) {
	c := sampleClient()
	b := encodeClient(&c)
	for i := 0; i < len(b); i++ {
		if _, err := DecodeClient(b[:i]); err == nil {
			t.Fatalf("prefix of %d/%d bytes accepted", i, len(b))
		}
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"bad\xffbyte", "bad\uFFFDbyte"},
		{strings.Repeat("a", 300), strings.Repeat("a", MaxTextLen)},
		{strings.Repeat("a", 254) + "é", strings.Repeat("a", 254)}, // no half rune
	}
	for _, tt := range tests {
		if got := cleanText(tt.in); got != tt.want {
			t.Errorf("cleanText(%.20q…) = %.20q… (%d bytes), want %d bytes", tt.in, got, len(got), len(tt.want))
		}
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	tests := []Identity{
		{EPIDs: map[string]string{}},
		{EPIDs: map[string]string{"Windows Server 2025": "03612-04919-000-123456-03-1033-26100.0000-0452026"}, HwID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, HasHwID: true},
		{EPIDs: map[string]string{"b": "2", "a": "1", "c": ""}},
	}
	for _, id := range tests {
		b, err := encodeIdentity(&id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeIdentity(b)
		if err != nil {
			t.Fatalf("DecodeIdentity: %v", err)
		}
		if got.HwID != id.HwID || got.HasHwID != id.HasHwID || len(got.EPIDs) != len(id.EPIDs) {
			t.Fatalf("got %+v, want %+v", got, id)
		}
		for k, v := range id.EPIDs {
			if got.EPIDs[k] != v {
				t.Fatalf("group %q: got %q, want %q", k, got.EPIDs[k], v)
			}
		}
	}
}

func TestDecodeIdentityErrors(t *testing.T) {
	// version, flags, HwID[8], n=2, "a" "x", "a" "y"
	dup := []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 'a', 1, 'x', 1, 'a', 1, 'y'}
	tests := []struct {
		name, field, reason string
		in                  []byte
	}{
		{"empty", "version", "truncated", nil},
		{"unknown flags", "flags", "unknown flag bits 0x02", []byte{1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"short HwID", "HwID", "need 8 bytes, have 3", []byte{1, 1, 1, 2, 3}},
		{"missing entry", "entry 0 group length", "need 1 bytes, have 0", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"duplicate group", "entry 1 group", `duplicate group "a"`, dup},
		{"trailing", "end", "trailing", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeIdentity(tt.in)
			var de *DecodeError
			if !errors.As(err, &de) || de.Field != tt.field || !strings.Contains(de.Reason, tt.reason) {
				t.Fatalf("got %v; want field %q reason containing %q", err, tt.field, tt.reason)
			}
		})
	}
}

func TestSeenAndCapValues(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	got, err := decodeSeen(encodeSeen(now))
	if err != nil || !got.Equal(now) {
		t.Fatalf("seen round trip: %v %v", got, err)
	}
	n, err := decodeCap(encodeCap(50))
	if err != nil || n != 50 {
		t.Fatalf("cap round trip: %d %v", n, err)
	}
	bad := []struct {
		name string
		err  error
	}{
		{"seen zero", func() error { _, err := decodeSeen(encodeSeen(time.Time{})); return err }()},
		{"seen short", func() error { _, err := decodeSeen([]byte{1, 0}); return err }()},
		{"seen version", func() error { _, err := decodeSeen([]byte{7, 0, 0, 0, 0, 0, 0, 0, 1}); return err }()},
		{"cap too big", func() error { _, err := decodeCap(encodeCap(MaxCap + 1)); return err }()},
		{"cap long", func() error { _, err := decodeCap([]byte{1, 0, 0, 0, 10, 0}); return err }()},
	}
	for _, b := range bad {
		var de *DecodeError
		if !errors.As(b.err, &de) {
			t.Errorf("%s: got %v, want a *DecodeError", b.name, b.err)
		}
	}
}

func TestTimeOrdering(t *testing.T) {
	times := []time.Time{
		time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1, 0),
		time.Unix(0, 0),
		time.Unix(0, 2),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2260, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var g guid.GUID
	for i := 1; i < len(times); i++ {
		a, b := tsKey(times[i-1], g, g), tsKey(times[i], g, g)
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("key of %v does not sort before key of %v", times[i-1], times[i])
		}
	}
}
