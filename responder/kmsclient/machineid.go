package kmsclient

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// machineIDFiles are where systemd and D-Bus keep the machine's identity, in
// the order systemd documents.
var machineIDFiles = []string{"/etc/machine-id", "/var/lib/dbus/machine-id"}

// cmidContext keys the hash so that the client machine ID we send is not the
// machine ID itself (machine-id(5) asks applications not to expose it) and
// cannot be linked to other applications' IDs derived from it.
const cmidContext = "kmsdns client machine ID v1\x00"

// MachineCMID returns this machine's stable client machine ID and where it
// came from. A Windows client keeps one CMID for its whole life, so a KMS host
// counts it once however often it activates; tools that send real
// activations use this ID by default so that they never inflate a host's
// count by accident. The ID is a version-4-shaped GUID derived from
// /etc/machine-id (or D-Bus's copy), else from the host name.
func MachineCMID() (guid.GUID, string, error) {
	for _, path := range machineIDFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		id := strings.TrimSpace(string(b))
		if len(id) < 16 || len(id) > 128 {
			continue // empty (first boot) or not a machine ID
		}
		return DeriveCMID(id), path, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return guid.Nil, "", errors.New("no /etc/machine-id and no host name: give --cmid GUID, or --cmid random")
	}
	return DeriveCMID("hostname:" + host), fmt.Sprintf("host name %q", host), nil
}

// DeriveCMID maps a machine identity to a client machine ID: the same input
// always gives the same ID.
func DeriveCMID(identity string) guid.GUID {
	sum := sha256.Sum256([]byte(cmidContext + identity))
	var c [16]byte
	copy(c[:], sum[:16])
	c[6] = c[6]&0x0f | 0x40
	c[8] = c[8]&0x3f | 0x80
	return guid.FromCanonical(c)
}
