package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tarOf(t *testing.T, hdrs ...*tar.Header) *bytes.Reader {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "x"
			h.Size = 1
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b.Bytes())
}

// TestUntarStaysInside: hostile names land under the root; links are refused.
func TestUntarStaysInside(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	err := untarFrom(tarOf(t,
		&tar.Header{Typeflag: tar.TypeReg, Name: "../../escape", Mode: 0o644},
		&tar.Header{Typeflag: tar.TypeReg, Name: "/abs/file", Mode: 0o600},
		&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777},
	), root, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
		t.Error("../../escape was written outside the root")
	}
	for name, mode := range map[string]os.FileMode{"escape": 0o644, "abs/file": 0o600, "tmp": 0o777 | os.ModeSticky | os.ModeDir} {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), mode)
		}
	}
	for _, typ := range []byte{tar.TypeSymlink, tar.TypeLink, tar.TypeChar} {
		err := untarFrom(tarOf(t, &tar.Header{Typeflag: typ, Name: "etc", Linkname: "/etc", Mode: 0o777}), t.TempDir(), false)
		if err == nil || !strings.Contains(err.Error(), "unsupported") {
			t.Errorf("type %q: err %v, want unsupported", typ, err)
		}
	}
}
