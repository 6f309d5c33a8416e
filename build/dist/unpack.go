package main

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// unpack reads an image archive both ways a runtime would (as an OCI image
// layout, as podman/docker ≥ 25 load it; as a docker-archive through
// manifest.json, as older docker load does), checks both name the same
// config and layers, unpacks the filesystem into root with the owners and
// modes of the layer, and prints the image's run configuration, one
// `key=value` per line (user, arg for entrypoint+cmd, env, port, label,
// health), for build/dist-test.sh.
func unpack(archive, root string, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "kmsdns-oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := untar(archive, dir, false); err != nil {
		return fmt.Errorf("%s: %w", archive, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return fmt.Errorf("%s as an OCI layout: %w", archive, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(im.Manifests) != 1 {
		return fmt.Errorf("%s: index.json lists %d images, want 1", archive, len(im.Manifests))
	}
	if im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] == "" {
		return fmt.Errorf("%s: index.json gives the image no name", archive)
	}
	oci, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return err
	}
	docker, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		return fmt.Errorf("%s as a docker-archive: %w", archive, err)
	}
	if err := sameImage(oci, docker); err != nil {
		return fmt.Errorf("%s: OCI layout and docker manifest.json differ: %w", archive, err)
	}
	cf, err := oci.ConfigFile()
	if err != nil {
		return err
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	rc := mutate.Extract(oci)
	defer rc.Close()
	if err := untarFrom(rc, root, true); err != nil {
		return fmt.Errorf("unpacking %s: %w", archive, err)
	}
	c := cf.Config
	fmt.Fprintf(stdout, "user=%s\n", c.User)
	for _, a := range append(append([]string{}, c.Entrypoint...), c.Cmd...) {
		fmt.Fprintf(stdout, "arg=%s\n", a)
	}
	for _, e := range c.Env {
		fmt.Fprintf(stdout, "env=%s\n", e)
	}
	for _, p := range sortedKeys(c.ExposedPorts) {
		fmt.Fprintf(stdout, "port=%s\n", p)
	}
	for _, v := range sortedKeys(c.Volumes) {
		fmt.Fprintf(stdout, "volume=%s\n", v)
	}
	labels := make([]string, 0, len(c.Labels))
	for k, v := range c.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	for _, l := range labels {
		fmt.Fprintf(stdout, "label=%s\n", l)
	}
	if c.Healthcheck != nil {
		fmt.Fprintf(stdout, "health=%s\n", strings.Join(c.Healthcheck.Test, " "))
	}
	fmt.Fprintf(stdout, "platform=%s/%s\n", cf.OS, cf.Architecture)
	if len(c.Entrypoint) > 0 {
		static, err := isStatic(filepath.Join(root, c.Entrypoint[0]))
		if err != nil {
			return fmt.Errorf("entrypoint %s: %w", c.Entrypoint[0], err)
		}
		fmt.Fprintf(stdout, "static=%v\n", static)
	}
	return nil
}

// isStatic reports whether an ELF executable needs no dynamic loader.
func isStatic(file string) (bool, error) {
	f, err := elf.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return false, nil
		}
	}
	return true, nil
}

func sortedKeys(m map[string]struct{}) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sameImage compares the config and layer digests of two views of an image.
func sameImage(a, b v1.Image) error {
	ca, err := a.ConfigName()
	if err != nil {
		return err
	}
	cb, err := b.ConfigName()
	if err != nil {
		return err
	}
	if ca != cb {
		return fmt.Errorf("config %s vs %s", ca, cb)
	}
	la, err := a.Layers()
	if err != nil {
		return err
	}
	lb, err := b.Layers()
	if err != nil {
		return err
	}
	if len(la) != len(lb) {
		return fmt.Errorf("%d vs %d layers", len(la), len(lb))
	}
	for i := range la {
		da, err := la[i].DiffID()
		if err != nil {
			return err
		}
		db, err := lb[i].DiffID()
		if err != nil {
			return err
		}
		if da != db {
			return fmt.Errorf("layer %d: %s vs %s", i, da, db)
		}
	}
	return nil
}

func untar(file, dir string, owners bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return untarFrom(f, dir, owners)
}

// untarFrom writes a tar stream under dir: directories and regular files
// only (kmsdns images have no links, and refusing them means no entry can
// lead a later one outside dir); with owners, the entries' uid/gid.
func untarFrom(r io.Reader, dir string, owners bool) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + hdr.Name)
		if name == "/" {
			continue
		}
		dst := filepath.Join(dir, name)
		mode := os.FileMode(hdr.Mode & 0o777)
		if hdr.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported tar entry type %q", hdr.Name, hdr.Typeflag)
		}
		if owners {
			if err := os.Lchown(dst, hdr.Uid, hdr.Gid); err != nil {
				return err
			}
		}
		if err := os.Chmod(dst, mode); err != nil {
			return err
		}
	}
}
