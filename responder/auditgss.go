package main

import (
	"flag"
	"io"

	"github.com/kmsdns/kmsdns/plugin/pkg/gsstsig"
	"github.com/kmsdns/kmsdns/responder/audit"
)

// gssFlags are audit's GSS-TSIG settings: --fix and --nsupdate-out for zones that take secure
// updates only (Active Directory's default).
type gssFlags struct {
	on                                 bool
	keytab, principal, krb5, spnServer string
}

func (g *gssFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&g.on, "gss-tsig", false, "sign --fix by GSS-TSIG (Kerberos, AD's secure dynamic update) with the ticket in KRB5CCNAME (after kinit) or --krb5-keytab; --nsupdate-out then writes a script for nsupdate -g")
	fs.StringVar(&g.keytab, "krb5-keytab", "", "with --gss-tsig: log in with this keytab `file` (and --krb5-principal) instead of the credential cache")
	fs.StringVar(&g.principal, "krb5-principal", "", "with --krb5-keytab: the `NAME@REALM` to log in as")
	fs.StringVar(&g.krb5, "krb5-config", "", "with --gss-tsig: krb5.conf `file` naming the realm's KDCs (default $KRB5_CONFIG, else /etc/krb5.conf)")
	fs.StringVar(&g.spnServer, "gss-server-name", "", "with --gss-tsig: the DNS server's host `NAME` (its principal is DNS/NAME; default: the primary in the zone's SOA)")
}

// check validates the combination with the other flags.
func (g *gssFlags) check(tsigKeyFile string) error {
	switch {
	case !g.on && (g.keytab != "" || g.principal != "" || g.krb5 != "" || g.spnServer != ""):
		return usagef("--krb5-keytab, --krb5-principal, --krb5-config and --gss-server-name go with --gss-tsig")
	case g.on && tsigKeyFile != "":
		return usagef("give --gss-tsig or --tsig-key-file, not both")
	case (g.keytab == "") != (g.principal == ""):
		return usagef("--krb5-keytab and --krb5-principal go together")
	}
	return nil
}

// settings is the audit package's view.
func (g *gssFlags) settings() audit.GSS {
	return audit.GSS{ServerName: g.spnServer, Credentials: gsstsig.Credentials{
		Keytab: g.keytab, Principal: g.principal, KRB5Config: g.krb5}}
}

// nsupdateWriter picks the nsupdate script's form.
func (g *gssFlags) nsupdateWriter(rep *audit.Report) func(io.Writer) {
	if g.on {
		return rep.WriteNSUpdateGSS
	}
	return rep.WriteNSUpdate
}
