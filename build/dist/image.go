package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageRepo is the image name in the archive's tags (docker load / podman
// load name the image with it).
const imageRepo = "docker.io/kmsdns/"

// writeImage writes p's OCI image for arch as an archive that is at once an
// OCI image layout (index.json, blobs/; podman load, docker load ≥ 25,
// skopeo oci-archive:) and a docker-archive (manifest.json; older docker
// load), and returns its file name.
func writeImage(o buildOptions, p product, arch, bin string) (string, error) {
	layerTar, err := imageLayer(o, p, bin)
	if err != nil {
		return "", err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", err
	}
	created := v1.Time{Time: o.meta.date}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: created, CreatedBy: "kmsdns build/dist " + o.meta.version, Comment: p.name + " binary, example configuration, user " + imageUser},
	})
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = arch, "linux", created
	if arch == "arm64" {
		cf.Variant = "v8"
	}
	user := fmt.Sprintf("%d:%d", imageUID, imageUID)
	labels := map[string]string{
		"org.opencontainers.image.title":         p.name,
		"org.opencontainers.image.description":   p.summary,
		"org.opencontainers.image.version":       o.meta.version,
		"org.opencontainers.image.revision":      o.meta.commit,
		"org.opencontainers.image.created":       o.meta.date.Format(time.RFC3339),
		"org.opencontainers.image.source":        "https://github.com/kmsdns/kmsdns",
		"org.opencontainers.image.url":           "https://github.com/kmsdns/kmsdns",
		"org.opencontainers.image.documentation": "https://github.com/kmsdns/kmsdns#install",
		"org.opencontainers.image.vendor":        "kmsdns",
		"org.opencontainers.image.licenses":      "NONE",
		"io.kmsdns.healthcheck":                  p.image.healthDoc,
	}
	cf.Config = v1.Config{
		User:         user,
		Entrypoint:   []string{"/usr/bin/" + p.name},
		Cmd:          p.image.cmd,
		Env:          append([]string{"PATH=/usr/bin"}, p.image.env...),
		ExposedPorts: set(p.image.ports),
		Volumes:      set(p.image.volumes),
		WorkingDir:   "/",
		Labels:       labels,
		StopSignal:   "SIGTERM",
	}
	if p.image.healthcheck != nil {
		cf.Config.Healthcheck = &v1.HealthConfig{Test: p.image.healthcheck, Interval: 30 * time.Second, Timeout: 5 * time.Second, StartPeriod: 10 * time.Second, Retries: 3}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s_%s_linux_%s.oci.tar", p.name, imageTag(o.meta.version), arch)
	ref := imageRepo + p.name + ":" + imageTag(o.meta.version)
	return name, writeArchive(filepath.Join(o.out, name), img, ref, o.meta.date)
}

func set(keys []string) map[string]struct{} {
	if len(keys) == 0 {
		return nil
	}
	m := map[string]struct{}{}
	for _, k := range keys {
		m[k] = struct{}{}
	}
	return m
}

// imageLayer is the image's only layer: the static binary, the example
// configuration, /etc/passwd and /etc/group naming the non-root user, the
// state volume owned by it, and /tmp. Every entry has the commit time.
func imageLayer(o buildOptions, p product, bin string) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := map[string]bool{}
	var add func(hdr *tar.Header, body []byte) error
	mkdir := func(dir string, uid int, mode int64) error {
		if dir == "." || dir == "/" || dirs[dir] {
			return nil
		}
		return add(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode, Uid: uid, Gid: uid}, nil)
	}
	add = func(hdr *tar.Header, body []byte) error {
		name := strings.TrimSuffix(hdr.Name, "/")
		if err := mkdir(path.Dir(name), 0, 0o755); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs[name] = true
		}
		hdr.ModTime, hdr.Format = o.meta.date, tar.FormatPAX
		hdr.Size = int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	file := func(name string, mode int64, body []byte) error {
		return add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, body)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, fmt.Appendf(nil, "root:x:0:\n%s:x:%d:\n", imageUser, imageUID)); err != nil {
		return nil, err
	}
	if err := file("etc/passwd", 0o644, fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/nonexistent:/sbin/nologin\n", imageUser, imageUID, imageUID, p.name)); err != nil {
		return nil, err
	}
	var confs []conf
	for _, c := range p.confs {
		switch c.image {
		case "-": // not in the image (the env file: the runtime sets the environment)
		case "":
			confs = append(confs, c)
		default:
			c.src = c.image
			confs = append(confs, c)
		}
	}
	sort.Slice(confs, func(i, j int) bool { return confs[i].dst < confs[j].dst })
	for _, c := range confs {
		body, err := os.ReadFile(filepath.Join(o.repo, c.src))
		if err != nil {
			return nil, err
		}
		if err := file(strings.TrimPrefix(c.dst, "/"), 0o644, body); err != nil {
			return nil, err
		}
	}
	if err := mkdir("tmp", 0, 0o1777); err != nil {
		return nil, err
	}
	if err := file("usr/bin/"+p.name, 0o755, binary); err != nil {
		return nil, err
	}
	for _, v := range p.image.volumes {
		if err := mkdir(strings.TrimPrefix(v, "/"), imageUID, 0o700); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeArchive writes img as a tar holding both an OCI image layout and a
// docker-archive manifest.json over the same blobs.
func writeArchive(file string, img v1.Image, ref string, mtime time.Time) error {
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	mdigest, err := img.Digest()
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	cdigest, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	blobs := map[string][]byte{blobPath(mdigest): manifest, blobPath(cdigest): config}
	var layerPaths []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		blobs[blobPath(d)] = body
		layerPaths = append(layerPaths, blobPath(d))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	platform := map[string]string{"architecture": cf.Architecture, "os": cf.OS}
	if cf.Variant != "" {
		platform["variant"] = cf.Variant
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIImageIndex,
		"manifests": []map[string]any{{
			"mediaType": types.OCIManifestSchema1,
			"digest":    mdigest.String(),
			"size":      len(manifest),
			"platform":  platform,
			"annotations": map[string]string{
				"org.opencontainers.image.ref.name": ref,
				"io.containerd.image.name":          ref,
			},
		}},
	})
	if err != nil {
		return err
	}
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config":   blobPath(cdigest),
		"RepoTags": []string{strings.TrimPrefix(ref, "docker.io/")},
		"Layers":   layerPaths,
	}})
	if err != nil {
		return err
	}
	var names []string
	for n := range blobs {
		names = append(names, n)
	}
	sort.Strings(names)
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	put := func(name string, typ byte, body []byte) error {
		mode := int64(0o644)
		if typ == tar.TypeDir {
			mode = 0o755
		}
		hdr := &tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: int64(len(body)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	entries := []struct {
		name string
		typ  byte
		body []byte
	}{
		{"oci-layout", tar.TypeReg, []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", tar.TypeReg, index},
		{"manifest.json", tar.TypeReg, dockerManifest},
		{"blobs/", tar.TypeDir, nil},
		{"blobs/sha256/", tar.TypeDir, nil},
	}
	for _, n := range names {
		entries = append(entries, struct {
			name string
			typ  byte
			body []byte
		}{n, tar.TypeReg, blobs[n]})
	}
	for _, e := range entries {
		if err := put(e.name, e.typ, e.body); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
