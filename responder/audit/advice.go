package audit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kmsdns/kmsdns/responder/catalog"
)

// Advice says what to do about one finding.
type Advice struct {
	Summary string `json:"summary"`
	// Steps are what to run or change, in order.
	Steps []string `json:"steps"`
	// GVLKs are the KMS client setup keys of the host's OS family (for
	// turning a wrongly keyed Windows host back into a client).
	GVLKs []GVLK `json:"gvlks"`
	// DeleteRecord is set when the SRV record should go.
	DeleteRecord bool `json:"delete_record"`
}

// GVLK is an edition's KMS client setup key.
type GVLK struct {
	Edition string `json:"edition"`
	Key     string `json:"key"`
}

// maxGVLKs bounds the keys listed per host.
const maxGVLKs = 6

// advise returns the fix for f (nil for a healthy finding).
func advise(f *Finding, cat *catalog.Catalog) *Advice {
	rec := fmt.Sprintf("delete the SRV record %s %s (see --nsupdate-out / --powershell-out, or --fix)", f.Owner, f.RData())
	if a := f.Alias; a != nil {
		rec = fmt.Sprintf("delete the %s record %s -> %s that leads to it (see --nsupdate-out / --powershell-out, or --fix; the SRV record at %s is not audit's to delete)",
			a.Type, a.Owner, a.Target, f.Owner)
	}
	switch f.Class {
	case ClassHealthy:
		return nil
	case ClassRogueDead:
		return &Advice{Summary: "stale record of an unapproved host", Steps: []string{rec}, DeleteRecord: true}
	case ClassStale:
		return &Advice{Summary: "approved host does not answer", DeleteRecord: true, Steps: []string{
			"if the host should serve: start its KMS service (sppsvc) and open TCP " + fmt.Sprint(f.Port) + " to it",
			"if it was decommissioned or renamed: " + rec,
		}}
	case ClassNotProbed:
		return &Advice{Summary: "record names a port or address clients cannot use (not probed)", Steps: []string{rec}, DeleteRecord: true}
	case ClassNotKMS:
		return &Advice{Summary: "record names something that is not a KMS host", Steps: []string{rec}, DeleteRecord: true}
	case ClassUnresolvable:
		return &Advice{Summary: "record names a host without an address", DeleteRecord: true, Steps: []string{
			rec, "(or, if the host exists, register its A/AAAA record)",
		}}
	}
	// Rogue and alive: say how to stop the host from being one.
	a := &Advice{DeleteRecord: true}
	var windows, office *HostKey
	for _, app := range f.Apps {
		if app.Status != "answered" || app.HostKey == nil || app.HostKey.Group == "" {
			continue
		}
		switch app.HostKey.Kind {
		case KindOffice:
			if office == nil {
				office = app.HostKey
			}
		default:
			if windows == nil {
				windows = app.HostKey
			}
		}
	}
	switch {
	case windows != nil && windows.Kind == KindClient:
		a.Summary = fmt.Sprintf("workstation with a Windows client KMS host key (%s) on %s: turn it back into a KMS client", windows.Group, windows.OS)
	case windows != nil:
		a.Summary = fmt.Sprintf("unapproved Windows Server KMS host (%s on %s): approve it if it should serve, else turn it back into a KMS client", windows.Group, windows.OS)
	case office != nil:
		a.Summary = fmt.Sprintf("unapproved Office KMS host (%s)", office.Group)
	default:
		a.Summary = "unapproved KMS host (not identified: run with --identify unapproved or all, or run `slmgr /dlv` on it)"
	}
	if windows != nil {
		a.GVLKs = gvlksFor(cat, windows.Kind, windows.Build)
		svc := "net stop sppsvc && net start sppsvc"
		if windows.Build < 7600 {
			svc = "net stop slsvc && net start slsvc"
		}
		a.Steps = append(a.Steps,
			"on the host: slmgr /ipk <the GVLK of its installed edition> (replaces the KMS host key)",
			"on the host: "+svc+" (or reboot), so it stops publishing _VLMCS._TCP",
			"on the host: slmgr /dlv must no longer say \"Key Management Service is enabled\"; slmgr /ato activates it against an approved host")
	}
	if office != nil {
		id := office.CSVLKID
		if id == "" {
			id = "<the Office KMS host key's activation ID from slmgr /dlv all>"
		}
		a.Steps = append(a.Steps,
			"on the host: slmgr /upk "+id+" (removes the "+office.Description+"), or uninstall the Office Volume License Pack",
			"on the host: net stop sppsvc && net start sppsvc")
	}
	a.Steps = append(a.Steps, "then "+rec+", and let only approved hosts update _VLMCS (a security group with update rights, or the vlmcs plugin in front)")
	return a
}

// gvlksFor lists the GVLKs of the main editions of the OS family a build
// and host key kind name (client: Windows 7..11; server: Windows Server).
func gvlksFor(cat *catalog.Catalog, kind string, build int) []GVLK {
	var keys, suffixes []string
	if kind == KindClient {
		suffixes = []string{" Pro", " Enterprise", " Education"}
		switch {
		case build < 7600:
			keys = []string{"vista"}
		case build < 9200:
			keys = []string{"win7"}
		case build < 9600:
			keys = []string{"win8"}
		case build < 10240:
			keys = []string{"win8.1"}
		default:
			keys = []string{"win10"}
		}
	} else {
		suffixes = []string{" Standard", " Datacenter", " Enterprise"}
		switch {
		case build < 7600:
			keys = []string{"ws2008-a", "ws2008-b", "ws2008-c"}
		case build < 9200:
			keys = []string{"ws2008r2-a", "ws2008r2-b", "ws2008r2-c"}
		case build < 9600:
			keys = []string{"ws2012"}
		case build < 14393:
			keys = []string{"ws2012r2"}
		case build < 17763:
			keys = []string{"ws2016"}
		case build < 20348:
			keys = []string{"ws2019"}
		case build < 26100:
			keys = []string{"ws2022"}
		default:
			keys = []string{"ws2025"}
		}
	}
	var all, main []GVLK
	for _, c := range cat.CountedIDs() {
		if !slices.Contains(keys, c.Key) {
			continue
		}
		for _, e := range cat.EditionsOf(c.ID) {
			if e.GVLK == "" || e.GVLK == "-" {
				continue
			}
			g := GVLK{Edition: e.Name, Key: e.GVLK}
			all = append(all, g)
			for _, s := range suffixes {
				if strings.HasSuffix(e.Name, s) {
					main = append(main, g)
				}
			}
		}
	}
	if len(main) == 0 {
		main = all
	}
	if len(main) > maxGVLKs {
		main = main[:maxGVLKs]
	}
	return main
}
