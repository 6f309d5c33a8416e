package gsstsig

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/miekg/dns"
)

// Signer sends DNS updates signed by GSS-TSIG for a long-running process: it logs in once
// (gokrb5 renews a keytab login by itself), keeps one context per DNS server, sets one up on
// first use and again when the server has forgotten it (a restart, the context's end).
// It is safe for concurrent use.
type Signer struct {
	Credentials Credentials
	// ServerName is the DNS servers' host name for the service principal DNS/ServerName;
	// empty: the primary named in the SOA of the update's zone, asked of the server.
	ServerName string
	Timeout    time.Duration // bounds each exchange (0: 5 s)

	mu       sync.Mutex
	cl       *client.Client
	contexts map[string]*Context // by server address
}

// Exchange signs the update m, sends it to server (host:port, over TCP) and returns the
// answer as Context.Exchange does, negotiating a context first when there is none.
func (s *Signer) Exchange(ctx context.Context, server string, m *dns.Msg) (*dns.Msg, error) {
	for attempt := 0; ; attempt++ {
		c, err := s.context(ctx, server, m)
		if err != nil {
			return nil, err
		}
		stripTSIG(m)
		r, err := c.Exchange(ctx, m, server, s.timeout())
		var ge *Error
		if attempt == 0 && errors.As(err, &ge) && (ge.Reason == ReasonContextLost || ge.Reason == ReasonBadServer) {
			// The server no longer knows the context (restarted, or the context ended) and
			// says so, or answers under another one: set up a new context, once.
			s.forget(server)
			continue
		}
		return r, err
	}
}

// context returns the server's context, negotiating one when needed.
func (s *Signer) context(ctx context.Context, server string, m *dns.Msg) (*Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.contexts[server]; c != nil {
		return c, nil
	}
	if s.cl == nil {
		cl, err := s.Credentials.Client()
		if err != nil {
			return nil, err
		}
		s.cl = cl
	}
	name := s.ServerName
	if name == "" {
		if len(m.Question) != 1 {
			return nil, fail(ReasonOther, nil, "an update names one zone")
		}
		var err error
		if name, err = PrimaryOf(ctx, server, m.Question[0].Name, s.timeout()); err != nil {
			return nil, err
		}
	}
	c, err := Negotiate(ctx, s.cl, server, name, s.timeout())
	if err != nil {
		return nil, err
	}
	if s.contexts == nil {
		s.contexts = map[string]*Context{}
	}
	s.contexts[server] = c
	return c, nil
}

func (s *Signer) forget(server string) {
	s.mu.Lock()
	delete(s.contexts, server)
	s.mu.Unlock()
}

func (s *Signer) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 5 * time.Second
}

// stripTSIG removes a TSIG record left by an earlier attempt.
func stripTSIG(m *dns.Msg) {
	if len(m.Extra) > 0 {
		if _, ok := m.Extra[len(m.Extra)-1].(*dns.TSIG); ok {
			m.Extra = m.Extra[:len(m.Extra)-1]
		}
	}
}

// PrimaryOf asks server for zone's SOA and returns the primary it names (its MNAME): the host
// whose DNS service principal a GSS-TSIG context is with.
func PrimaryOf(ctx context.Context, server, zone string, timeout time.Duration) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, _, err := (&dns.Client{Net: "tcp", Timeout: timeout}).ExchangeContext(ctx, m, server)
	if err != nil {
		return "", fail(ReasonOther, err, "asking %s for the SOA of %s (to learn the server's name for GSS-TSIG)", server, zone)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, dns.Fqdn(zone)) {
			if _, ok := dns.IsDomainName(soa.Ns); !ok || soa.Ns == "." {
				break
			}
			return strings.TrimSuffix(soa.Ns, "."), nil
		}
	}
	return "", fail(ReasonOther, nil, "%s gave no SOA for %s: give the DNS server's host name (--gss-server-name)", server, zone)
}
