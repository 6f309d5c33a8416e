package audit

import (
	"fmt"
	"strings"

	"github.com/kmsdns/kmsdns/responder/catalog"
)

// classify sets f's class, reason, workstation flag and fix from its probe
// and KMS answers.
func classify(f *Finding, cat *catalog.Catalog) {
	switch {
	case !f.Probe.Connected && f.Approved:
		f.Class = ClassStale
		f.Reason = "approved, but nothing answers: " + f.Probe.Error
	case !f.Probe.Connected:
		f.Class = ClassRogueDead
		f.Reason = "not approved, and nothing answers: " + f.Probe.Error
	case !f.Probe.Bound:
		f.Class = ClassNotKMS
		f.Reason = "not a KMS host: " + f.Probe.Error
	case f.Approved:
		f.Class = ClassHealthy
		f.Reason = "approved, and binds as a KMS host"
	default:
		f.Class = ClassRogue
		f.Reason = "not approved, and answers as a KMS host"
	}
	for _, a := range f.Apps {
		if a.HostKey != nil && a.HostKey.Kind == KindClient {
			f.Workstation = true
		}
	}
	if desc := describeApps(f.Apps); desc != "" {
		f.Reason += "; " + desc
	}
	if f.Workstation {
		f.Reason += "; holds a Windows CLIENT host key: a workstation that became a KMS host by mistake"
	}
	f.Fix = advise(f, cat)
}

// describeApps summarizes the KMS answers: group, OS and count per
// application, and which applications the host refuses.
func describeApps(apps []AppAnswer) string {
	var parts, refused []string
	for _, a := range apps {
		switch a.Status {
		case "answered":
			s := appName(a.Application) + ": "
			if a.HostKey != nil && a.HostKey.Group != "" {
				s += a.HostKey.Group + " on " + a.HostKey.OS
			} else {
				s += "ePID " + a.EPID + " (host key not in the catalog)"
			}
			s += fmt.Sprintf(", count %d", a.Count)
			parts = append(parts, s)
		case "refused":
			refused = append(refused, appName(a.Application))
		case "error":
			msg := a.Error
			if msg == "" {
				msg = a.HRESULT
			}
			parts = append(parts, appName(a.Application)+": "+msg)
		}
	}
	if len(refused) > 0 {
		parts = append(parts, "refuses "+strings.Join(refused, ", ")+" (0xC004F042)")
	}
	return strings.Join(parts, "; ")
}

// appName names a catalog application key for people.
func appName(key string) string {
	switch key {
	case "windows":
		return "Windows"
	case "office2010":
		return "Office 2010"
	case "office":
		return "Office 2013+"
	}
	return key
}
