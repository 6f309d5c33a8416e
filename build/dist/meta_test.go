package main

import "testing"

func TestPackageVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"v1.2.0", "1.2.0"},
		{"v1.2.0-dirty", "1.2.0+dirty"},
		{"v1.2.0-rc1", "1.2.0~rc1"},
		{"v1.2.0-4-g1a2b3c4d5e6f", "1.2.0+git4.g1a2b3c4d5e6f"},
		{"v1.2.0-4-g1a2b3c4d5e6f-dirty", "1.2.0+git4.g1a2b3c4d5e6f.dirty"},
		{"v1.2.0-rc.1-4-g1a2b", "1.2.0~rc.1+git4.g1a2b"},
		{"v0.0.0-171-gc95bae0cb720", "0.0.0+git171.gc95bae0cb720"},
	} {
		got, err := packageVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("packageVersion(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "c95bae0", "1.2.0", "v1.2", "v1.2.0-4-gXYZ", "v1.2.0;rm", "v1.2.0-a_b"} {
		if got, err := packageVersion(bad); err == nil {
			t.Errorf("packageVersion(%q) = %q, want an error", bad, got)
		}
	}
}
