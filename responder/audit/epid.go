package audit

import (
	"fmt"
	"strings"

	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
)

// Host key kinds.
const (
	// KindClient is a Windows client host key (Windows 7, 8, 8.1, 10/11
	// CSVLK): it installs only on a client OS, so the host is a workstation.
	KindClient = "client"
	// KindServer is a Windows Server host key.
	KindServer = "server"
	// KindOffice is an Office host key (installed with the Office Volume
	// License Pack).
	KindOffice = "office"
)

// HostKey is what a host's ePID says about the key it holds.
type HostKey struct {
	// Group is the catalog's host key group ("windows-10-2019"); empty when
	// the ePID's group and key ID match none.
	Group       string `json:"group"`
	Description string `json:"description"`
	// Kind is KindClient, KindServer or KindOffice ("" when unknown).
	Kind string `json:"kind"`
	// CSVLKID is the host key's activation ID (what slmgr /upk takes).
	CSVLKID string `json:"csvlk_id"`
	// Channel is the ePID's licence channel ("volume" for 03).
	Channel string `json:"channel"`
	// EPIDGroup and KeyID are the ePID's group ID and key ID.
	EPIDGroup int   `json:"epid_group"`
	KeyID     int64 `json:"key_id"`
	// Build is the host's OS build, OS what the catalog calls it.
	Build int    `json:"build"`
	OS    string `json:"os"`
	// Activated is the host key's activation date (YYYY day DDD).
	Activated string `json:"activated"`
}

// DecodeEPID reads a KMS host's ePID with the catalog: the group ID and
// key-ID range name the host key group (and so its kind), the build the
// host's OS.
func DecodeEPID(cat *catalog.Catalog, epid string) (HostKey, error) {
	e, err := kms.ParseEPID(epid)
	if err != nil {
		return HostKey{}, err
	}
	hk := HostKey{EPIDGroup: e.Group, KeyID: e.KeyID, Build: e.Build, Channel: fmt.Sprintf("%02d", e.Channel),
		Activated: fmt.Sprintf("%04d day %03d", e.Year, e.DayOfYear)}
	if e.Channel == kms.ChannelVolume {
		hk.Channel = "volume"
	}
	var match *catalog.HostKeyGroup
	for _, g := range cat.Groups() {
		if g.EPIDGroupID == e.Group && e.KeyID >= g.KeyIDMin && e.KeyID <= g.KeyIDMax {
			match = g
			break
		}
	}
	if match != nil {
		hk.Group, hk.Description, hk.Kind = match.Name, match.Description, groupKind(cat, match)
		if !match.CSVLKID.IsNil() {
			hk.CSVLKID = match.CSVLKID.String()
		}
	}
	hk.OS = osName(cat, e.Build, hk.Kind)
	return hk, nil
}

// groupKind says whether g is a Windows client, Windows Server or Office
// host key: a Windows group that activates no server counted ID installs
// only on a client OS.
func groupKind(cat *catalog.Catalog, g *catalog.HostKeyGroup) string {
	if a, ok := cat.Application(g.AppID); !ok || a.Key != "windows" {
		return KindOffice
	}
	for _, id := range g.Activates {
		if c, ok := cat.CountedID(id); ok && c.Kind == catalog.KindServer {
			return KindServer
		}
	}
	return KindClient
}

// osName names the host OS of a build: the catalog's name of the newest
// listed build not newer than it, narrowed to the client or server half of
// names like "Windows 10 1809 / Server 2019".
func osName(cat *catalog.Catalog, build int, kind string) string {
	var best *catalog.HostBuild
	builds := cat.HostBuilds()
	for i := range builds {
		if builds[i].Build <= build {
			best = &builds[i]
		}
	}
	if best == nil {
		return fmt.Sprintf("build %d (older than any the catalog lists)", build)
	}
	name := best.Name
	if client, server, ok := strings.Cut(name, " / "); ok {
		switch kind {
		case KindClient:
			name = client
		case KindServer:
			name = "Windows " + server
		}
	}
	if best.Build != build {
		return fmt.Sprintf("build %d (%s or later)", build, name)
	}
	return fmt.Sprintf("%s (build %d)", name, build)
}
