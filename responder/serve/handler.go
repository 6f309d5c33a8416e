package serve

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/kms"
)

// kmsHandler answers RequestActivation calls: decode, decide, encode.
type kmsHandler struct {
	host    *host.Host
	log     *slog.Logger
	metrics *responderMetrics
}

// ServeKMS implements dcerpc.Handler.
func (k *kmsHandler) ServeKMS(ctx context.Context, peer netip.AddrPort, request []byte) ([]byte, uint32) {
	start := time.Now()
	in, err := kms.ParseRequest(request)
	if err != nil {
		code := kms.ErrInvalidData
		var h kms.HRESULT
		if errors.As(err, &h) {
			code = h
		}
		k.log.Info("request refused", "peer", peer.String(), "hresult", code.Error(), "reason", err.Error())
		k.metrics.observeRequest(unknownLabel, unknownLabel, protocolLabel(request), code.Label(), time.Since(start))
		return nil, uint32(code)
	}
	req := &in.Request
	res, err := k.host.Activate(ctx, host.Input{
		App: req.ApplicationID, CountedID: req.KMSCountedID, SKU: req.SKUID, CMID: req.ClientMachineID,
		PreviousCMID: req.PreviousClientMachineID, NPolicy: req.RequiredClientCount, ClientTime: req.Time(),
		Workstation: req.WorkstationName, LicenseStatus: req.LicenseStatus, BindingExpiration: req.BindingExpiration,
		VM: req.VMInfo != 0, ProtocolMajor: req.MajorVersion, ProtocolMinor: req.MinorVersion, Peer: peer,
	})
	app := res.Application
	if app == "" {
		app = unknownLabel
	}
	proto := strconv.Itoa(int(req.MajorVersion))
	if err != nil {
		// Not durable: say nothing, so the client tries another host.
		k.metrics.observeRequest(app, unknownLabel, proto, "unrecorded", time.Since(start))
		return nil, dcerpc.StatusCloseConnection
	}
	if res.HRESULT != kms.OK {
		k.metrics.observeRequest(app, unknownLabel, proto, res.HRESULT.Label(), time.Since(start))
		return nil, uint32(res.HRESULT)
	}
	resp := kms.Response{
		EPID:               res.EPID,
		CurrentCount:       uint32(res.CurrentCount),
		ActivationInterval: uint32(res.ActivationInterval),
		RenewalInterval:    uint32(res.RenewalInterval),
		HwID:               res.HwID,
	}
	out, err := in.AppendResponse(make([]byte, 0, 320), &resp, rand.Reader)
	if err != nil {
		k.log.Error("encoding response", "peer", peer.String(), "err", err)
		k.metrics.observeRequest(app, res.Group, proto, "encode_error", time.Since(start))
		return nil, dcerpc.StatusCloseConnection
	}
	k.metrics.observeRequest(app, res.Group, proto, "activated", time.Since(start))
	return out, 0
}

const unknownLabel = "unknown"

// protocolLabel reads the major version of an undecodable request, if any.
func protocolLabel(request []byte) string {
	if len(request) >= 4 {
		switch major := int(request[2]) | int(request[3])<<8; major {
		case 4, 5, 6:
			return strconv.Itoa(major)
		}
	}
	return unknownLabel
}
