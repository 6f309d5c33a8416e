package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/template"
)

type buildOptions struct {
	repo, bin, out string
	arches         []string
	pkgVersion     string
	meta           meta
}

// build writes every artifact for every arch into o.out, then SHA256SUMS.
func build(o buildOptions, stdout io.Writer) error {
	if o.repo == "" || o.bin == "" || o.out == "" {
		return fmt.Errorf("build needs -repo, -bin and -out")
	}
	if len(o.arches) == 0 {
		return fmt.Errorf("build: no -arch")
	}
	pv := o.pkgVersion
	if pv == "" {
		var err error
		if pv, err = packageVersion(o.meta.version); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(o.out, ".stage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)

	var artifacts []string
	for _, p := range products() {
		files, err := stageFiles(o.repo, stage, p)
		if err != nil {
			return err
		}
		for _, arch := range o.arches {
			bin := filepath.Join(o.bin, "linux_"+arch, p.name)
			if _, err := os.Stat(bin); err != nil {
				return fmt.Errorf("%s for linux/%s: %w (build/dist.sh builds it)", p.name, arch, err)
			}
			for _, format := range []string{"deb", "rpm"} {
				name, err := writePackage(o, p, files, format, arch, bin, pv)
				if err != nil {
					return fmt.Errorf("%s %s %s: %w", p.name, arch, format, err)
				}
				artifacts = append(artifacts, name)
			}
			name, err := writeImage(o, p, arch, bin)
			if err != nil {
				return fmt.Errorf("%s %s image: %w", p.name, arch, err)
			}
			artifacts = append(artifacts, name)
		}
	}
	return writeSums(o.out, artifacts, stdout)
}

// staged are the generated inputs of one product's packages.
type staged struct {
	unit    string            // the unit with package paths
	scripts map[string]string // deb-postinst, … → file
}

// stageFiles writes the unit (with the packages' binary path) and the
// maintainer scripts of p into dir.
func stageFiles(repo, dir string, p product) (staged, error) {
	s := staged{scripts: map[string]string{}}
	unit, err := os.ReadFile(filepath.Join(repo, "build/systemd", p.unit))
	if err != nil {
		return s, err
	}
	// The units in build/systemd name /usr/local/bin for a hand install;
	// packages own /usr/bin. Nothing else in the unit changes.
	if !bytes.Contains(unit, []byte("/usr/local/bin/"+p.name)) {
		return s, fmt.Errorf("build/systemd/%s does not run /usr/local/bin/%s", p.unit, p.name)
	}
	unit = bytes.ReplaceAll(unit, []byte("/usr/local/bin/"), []byte("/usr/bin/"))
	s.unit = filepath.Join(dir, p.unit)
	if err := os.WriteFile(s.unit, unit, 0o644); err != nil {
		return s, err
	}
	data := map[string]any{"Name": p.name, "Unit": p.unit, "State": p.state, "Config": p.config,
		"MakeSecrets": makeSecrets(p.secrets), "Secrets": secretPaths(p.secrets), "ConfDirs": confDirs(p)}
	for _, name := range []string{"deb-postinst", "deb-prerm", "deb-postrm", "rpm-post", "rpm-preun", "rpm-postun"} {
		t, err := template.ParseFiles(filepath.Join(repo, "build/dist/files", name))
		if err != nil {
			return s, err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return s, err
		}
		f := filepath.Join(dir, p.name+"."+name)
		if err := os.WriteFile(f, b.Bytes(), 0o755); err != nil {
			return s, err
		}
		s.scripts[name] = f
	}
	return s, nil
}

// makeSecrets is the shell that creates each missing secret file, root's
// and mode 0600, so that the unit's LoadCredential= finds it.
func makeSecrets(secrets []secret) string {
	var b strings.Builder
	for _, s := range secrets {
		fmt.Fprintf(&b, "if [ ! -e %s ]; then\n\t(\n\t\tumask 077\n", s.path)
		switch s.make {
		case "empty":
			fmt.Fprintf(&b, "\t\t: >%s\n", s.path)
		case "token":
			fmt.Fprintf(&b, "\t\tod -An -tx1 -N32 /dev/urandom | tr -d ' \\n' >%s.new\n\t\techo >>%s.new\n\t\tmv %s.new %s\n", s.path, s.path, s.path, s.path)
		case "tsig":
			fmt.Fprintf(&b, "\t\tprintf 'key \"kmsdns-key.\" {\\n\\talgorithm hmac-sha256;\\n\\tsecret \"%%s\";\\n};\\n' \"$(head -c 32 /dev/urandom | base64)\" >%s.new\n\t\tmv %s.new %s\n", s.path, s.path, s.path)
		default:
			panic("secret " + s.path + ": unknown kind " + s.make)
		}
		b.WriteString("\t)\nfi\n")
	}
	return b.String()
}

func secretPaths(secrets []secret) []string {
	var paths []string
	for _, s := range secrets {
		paths = append(paths, s.path)
	}
	return paths
}

// confDirs lists the directories holding p's configuration.
func confDirs(p product) []string {
	var dirs []string
	for _, c := range p.confs {
		if d := filepath.Dir(c.dst); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// writeSums writes SHA256SUMS (sha256sum -c format) for the artifacts.
func writeSums(out string, artifacts []string, stdout io.Writer) error {
	sort.Strings(artifacts)
	var b strings.Builder
	for _, a := range artifacts {
		f, err := os.Open(filepath.Join(out, a))
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), a)
		fmt.Fprintf(stdout, "dist: %-60s %6.1f MiB\n", a, float64(n)/(1<<20))
	}
	return os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(b.String()), 0o644)
}
