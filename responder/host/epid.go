package host

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	"github.com/kmsdns/kmsdns/responder/kms"
)

// epidMaterial is what generateEPID needs from a host key group.
type epidMaterial struct {
	platform, group    int
	keyIDMin, keyIDMax int64
	lcid, build        int
}

// generateEPID returns a fresh ePID for a host key group: a key ID drawn
// uniformly from the group's range and the activation date at.
func generateEPID(m epidMaterial, at time.Time) (kms.EPID, error) {
	if m.keyIDMin < 0 || m.keyIDMax < m.keyIDMin || m.keyIDMax > 999999999 {
		return kms.EPID{}, fmt.Errorf("key ID range %d-%d is not within 0-999999999", m.keyIDMin, m.keyIDMax)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(m.keyIDMax-m.keyIDMin+1))
	if err != nil {
		return kms.EPID{}, fmt.Errorf("draw key ID: %w", err)
	}
	at = at.UTC()
	return kms.EPID{
		Platform:  m.platform,
		Group:     m.group,
		KeyID:     m.keyIDMin + n.Int64(),
		Channel:   kms.ChannelVolume,
		LCID:      m.lcid,
		Build:     m.build,
		DayOfYear: at.YearDay(),
		Year:      at.Year(),
	}, nil
}
