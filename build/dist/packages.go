package main

import (
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// unitDir is where both formats put systemd units (Debian ≥ 12 and every
// rpm distribution read /usr/lib/systemd/system).
const unitDir = "/usr/lib/systemd/system/"

// writePackage writes p's .deb or .rpm for arch and returns its file name.
func writePackage(o buildOptions, p product, st staged, format, arch, bin, version string) (string, error) {
	fi := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: o.meta.date}
	}
	contents := files.Contents{
		{Source: bin, Destination: "/usr/bin/" + p.name, FileInfo: fi(0o755)},
		{Source: st.unit, Destination: unitDir + p.unit, FileInfo: fi(0o644)},
	}
	for _, d := range p.docs {
		contents = append(contents, &files.Content{
			Source: filepath.Join(o.repo, d.src), Destination: "/usr/share/doc/" + p.name + "/" + d.dst, FileInfo: fi(0o644),
		})
	}
	confType := files.TypeConfig
	if format == "rpm" {
		confType = files.TypeConfigNoReplace
	}
	dirs := map[string]bool{}
	for _, c := range p.confs {
		if d := filepath.Dir(c.dst); !dirs[d] {
			dirs[d] = true // owned, so rpm -e removes it when empty
			contents = append(contents, &files.Content{Destination: d, Type: files.TypeDir, FileInfo: fi(os.FileMode(p.confDir))})
		}
		contents = append(contents, &files.Content{
			Source: filepath.Join(o.repo, c.src), Destination: c.dst, Type: confType, FileInfo: fi(os.FileMode(c.mode)),
		})
	}
	info := &nfpm.Info{
		Name:          p.name,
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none", // packageVersion already made it dpkg/rpm-ordered
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "kmsdns <kmsdns@users.noreply.github.com>",
		Vendor:        "kmsdns",
		Homepage:      "https://github.com/kmsdns/kmsdns",
		License:       "none: kmsdns grants no licence",
		Description:   p.summary + "\n" + p.description,
		MTime:         o.meta.date,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Umask:    0o022,
		},
	}
	var pk nfpm.Packager
	switch format {
	case "deb":
		pk = deb.Default
		info.Scripts = nfpm.Scripts{
			PostInstall: st.scripts["deb-postinst"],
			PreRemove:   st.scripts["deb-prerm"],
			PostRemove:  st.scripts["deb-postrm"],
		}
		info.Deb.Compression = "gzip" // xz saves ~35% but costs 5x the CPU; every dpkg and rpm reads gzip
	case "rpm":
		pk = rpm.DefaultRPM
		info.Release = "1"
		info.Scripts = nfpm.Scripts{
			PostInstall: st.scripts["rpm-post"],
			PreRemove:   st.scripts["rpm-preun"],
			PostRemove:  st.scripts["rpm-postun"],
		}
		info.RPM.Summary = p.summary
		info.RPM.Group = "System Environment/Daemons"
		info.RPM.BuildHost = "kmsdns-dist" // not the build machine's name: reproducible
		info.RPM.Packager = info.Maintainer
		info.RPM.Compression = "gzip"
	}
	info = nfpm.WithDefaults(info)
	name := pk.ConventionalFileName(info)
	tmp := filepath.Join(o.out, "."+name+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	if err := pk.Package(info, f); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return name, os.Rename(tmp, filepath.Join(o.out, name))
}
