package kms

import "testing"

func TestDecodeUTF16(t *testing.T) {
	tests := []struct {
		in   []uint16
		want string
	}{
		{[]uint16{'a', 'b', 0, 'c'}, "ab"},
		{[]uint16{0xD835, 0xDD18, 'x'}, "𝔘x"},
		{[]uint16{0xD835, 'x'}, "\uFFFDx"}, // unpaired high surrogate
		{[]uint16{0xDD18}, "\uFFFD"},       // lone low surrogate
		{[]uint16{'a', 0xD835}, "a\uFFFD"}, // high surrogate at the end
		{nil, ""},
	}
	for _, tc := range tests {
		var b []byte
		for _, u := range tc.in {
			b = appendU16(b, u)
		}
		if got := decodeUTF16(b); got != tc.want {
			t.Errorf("decodeUTF16(%x) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
