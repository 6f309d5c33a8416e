package main

import (
	"flag"

	"github.com/kmsdns/kmsdns/plugin/pkg/gsstsig"
	"github.com/kmsdns/kmsdns/responder/publish"
	"github.com/kmsdns/kmsdns/responder/serve"
)

// registerGSS is the registration's GSS-TSIG part: registering in an Active Directory zone
// that takes secure updates only, with this host's own Kerberos identity (a keytab for a
// computer or service account), as a genuine Windows KMS host registers.
type registerGSS struct {
	On bool `yaml:"gss_tsig"`
	// ADServers and ADZones, when given, register by GSS-TSIG there in addition to the TSIG
	// registration with servers/zone (CoreDNS); without them --gss-tsig signs the one
	// registration.
	ADServers  []string `yaml:"ad_servers"`
	ADZones    nameList `yaml:"ad_zone"`
	Keytab     string   `yaml:"krb5_keytab"`
	Principal  string   `yaml:"krb5_principal"`
	KRB5Config string   `yaml:"krb5_config"`
	ServerName string   `yaml:"gss_server_name"`
}

func (g *registerGSS) flags(fs *flag.FlagSet) {
	fs.BoolVar(&g.On, "gss-tsig", g.On, "register by GSS-TSIG (Kerberos; Active Directory's secure dynamic update) with --krb5-keytab and --krb5-principal instead of a TSIG key")
	fs.StringVar(&g.Keytab, "krb5-keytab", g.Keytab, "with --gss-tsig: this host's keytab `file` (a computer or service account)")
	fs.StringVar(&g.Principal, "krb5-principal", g.Principal, "with --gss-tsig: the `NAME@REALM` in the keytab to log in as")
	fs.StringVar(&g.KRB5Config, "krb5-config", g.KRB5Config, "with --gss-tsig: krb5.conf `file` naming the realm's KDCs (default $KRB5_CONFIG, else /etc/krb5.conf)")
	fs.StringVar(&g.ServerName, "gss-server-name", g.ServerName, "with --gss-tsig: the DNS servers' host `NAME` (principal DNS/NAME; default: the primary in the zone's SOA)")
	fs.Var(stringList{&g.ADServers}, "ad-dns-server", "with --gss-tsig: also register by GSS-TSIG at this Active Directory DNS server `host:port`, repeatable (the TSIG registration with --dns-server goes on)")
	fs.Var(stringList{(*[]string)(&g.ADZones)}, "ad-zone", "with --ad-dns-server: the AD `zone` to publish _vlmcs._tcp in, repeatable")
}

// check reports what is wrong with the combination, as (config key, flag, message).
func (g *registerGSS) check(tsigGiven bool, bad func(key, flag, format string, args ...any)) {
	switch {
	case !g.On && (g.Keytab != "" || g.Principal != "" || g.KRB5Config != "" || g.ServerName != "" || len(g.ADServers) > 0 || len(g.ADZones) > 0):
		bad("register.gss_tsig", "gss-tsig", "--krb5-keytab, --krb5-principal, --krb5-config, --gss-server-name, --ad-dns-server and --ad-zone go with --gss-tsig")
	case (len(g.ADServers) > 0) != (len(g.ADZones) > 0):
		bad("register.ad_servers", "ad-dns-server", "--ad-dns-server and --ad-zone go together")
	case g.On && tsigGiven && len(g.ADServers) == 0:
		bad("register.gss_tsig", "gss-tsig", "give a TSIG key or --gss-tsig, not both (or --ad-dns-server and --ad-zone to register in AD as well)")
	case g.On && (g.Keytab == "" || g.Principal == ""):
		bad("register.krb5_keytab", "krb5-keytab", "--gss-tsig registers with this host's keytab: give --krb5-keytab and --krb5-principal")
	}
}

// apply makes base sign by GSS-TSIG.
func (g *registerGSS) apply(base *publish.Config) {
	s := &gsstsig.Signer{ServerName: g.ServerName, Credentials: gsstsig.Credentials{
		Keytab: g.Keytab, Principal: g.Principal, KRB5Config: g.KRB5Config}}
	base.Key = nil
	base.Sign = s.Exchange
	base.TCP = true
}

// also is the registration in AD next to the TSIG one (nil without --ad-dns-server):
// shared's settings, the AD servers and zones, GSS-TSIG.
func (g *registerGSS) also(shared publish.Config, target string) (*serve.RegisterConfig, error) {
	if len(g.ADServers) == 0 {
		return nil, nil
	}
	rc := &serve.RegisterConfig{Publish: shared}
	rc.Publish.Servers = g.ADServers
	g.apply(&rc.Publish)
	for _, zone := range g.ADZones {
		t, err := targetIn(target, zone, len(g.ADZones))
		if err != nil {
			return nil, err
		}
		rc.Zones = append(rc.Zones, serve.Zone{Zone: zone, Target: t})
	}
	return rc, nil
}
