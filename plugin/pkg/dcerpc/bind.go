package dcerpc

// association is the server's per-connection presentation context state:
// which context ids were accepted, with which transfer syntax.
type association struct {
	group   uint32 // assoc_group_id answered in bind_ack/alter_context_resp
	secAddr string // local port of the accepted socket, as text
	noNDR64 bool   // answer like a host without NDR64 support

	n   int
	ctx [maxBindContexts]boundContext
}

type boundContext struct {
	id  uint16
	syn Syntax
}

// lookup returns the transfer syntax accepted for context id, or noSyntax.
func (a *association) lookup(id uint16) Syntax {
	for i := 0; i < a.n; i++ {
		if a.ctx[i].id == id {
			return a.ctx[i].syn
		}
	}
	return noSyntax
}

// accept records (or replaces) the syntax of context id; it reports false
// when the table of contexts is full.
func (a *association) accept(id uint16, syn Syntax) bool {
	for i := 0; i < a.n; i++ {
		if a.ctx[i].id == id {
			a.ctx[i].syn = syn
			return true
		}
	}
	if a.n == len(a.ctx) {
		return false
	}
	a.ctx[a.n] = boundContext{id, syn}
	a.n++
	return true
}

// negotiate answers a bind or alter_context PDU the way a Windows 8+ KMS
// host (and vlmcsd by default) does, appending the bind_ack or
// alter_context_resp to dst:
//
//   - an item for another interface is rejected with reason 1;
//   - a bind-time feature negotiation item gets negotiate_ack with the
//     requested bits & 3;
//   - NDR64 is accepted when offered (unless disabled);
//   - NDR32 is rejected with reason 2 in a bind that also offers NDR64, and
//     accepted otherwise, in particular in the alter_context that follows;
//   - anything else is rejected with reason 2.
//
// The answer echoes the client's max_xmit/max_recv and call_id; a bind_ack
// copies the bind's flags and carries the secondary address, an
// alter_context_resp has flags FIRST|LAST and no secondary address.
func (a *association) negotiate(dst, pdu []byte) ([]byte, error) {
	h, b, err := parseBind(pdu)
	if err != nil {
		return dst, err
	}
	isBind := h.Type == PTypeBind
	offers64 := false
	if !a.noNDR64 {
		for _, c := range b.Contexts {
			if c.Abstract == KMSInterface && hasSyntax(c.Transfer, ndr64Syntax) {
				offers64 = true
			}
		}
	}
	var results [maxBindContexts]result
	ack := bindAck{
		MaxXmitFrag: b.MaxXmitFrag,
		MaxRecvFrag: b.MaxRecvFrag,
		AssocGroup:  a.group,
		Results:     results[:0],
	}
	for _, c := range b.Contexts {
		ack.Results = append(ack.Results, a.decide(c, isBind && offers64))
	}
	out := Header{Type: PTypeBindAck, Flags: h.Flags, DataRep: DataRepLE, CallID: h.CallID}
	if isBind {
		ack.SecAddr = a.secAddr
	} else {
		out.Type = ptypeAlterContextResp
		out.Flags = FlagFirstFrag | FlagLastFrag
	}
	return appendBindAck(dst, out, &ack), nil
}

// decide returns the result for one context item and records an accepted
// syntax. rejectNDR32 is set for a bind that offers NDR64.
func (a *association) decide(c ContextItem, rejectNDR32 bool) result {
	if c.Abstract != KMSInterface {
		return result{Result: resultProviderRejection, Reason: reasonAbstractSyntaxNotSupported}
	}
	for _, t := range c.Transfer {
		if bits, ok := btfnFeatures(t); ok {
			return result{Result: resultNegotiateAck, Reason: bits & (featureSecurityContextMultiplexing | featureKeepConnectionOnOrphan)}
		}
	}
	syn := noSyntax
	switch {
	case !a.noNDR64 && hasSyntax(c.Transfer, ndr64Syntax):
		syn = NDR64
	case !rejectNDR32 && hasSyntax(c.Transfer, NDR32Syntax):
		syn = NDR32
	default:
		return result{Result: resultProviderRejection, Reason: reasonTransferSyntaxNotSupported}
	}
	if !a.accept(c.ID, syn) {
		return result{Result: resultProviderRejection, Reason: reasonLocalLimitExceeded}
	}
	return result{Result: resultAcceptance, Transfer: syn.ID()}
}

func hasSyntax(list []SyntaxID, s SyntaxID) bool {
	for _, t := range list {
		if t == s {
			return true
		}
	}
	return false
}
