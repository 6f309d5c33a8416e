package gsstsig

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// Credentials names where the Kerberos identity comes from: a keytab and principal when
// Keytab is set, else the credential cache.
type Credentials struct {
	CCache     string // credential cache: "FILE:/path" or a path; empty: $KRB5CCNAME, else /tmp/krb5cc_<uid>
	Keytab     string // keytab file; with Principal, used instead of the cache
	Principal  string // "name@REALM" or "name" (the default realm of krb5.conf)
	KRB5Config string // krb5.conf; empty: $KRB5_CONFIG, else /etc/krb5.conf
}

// String says which identity, for messages ("the ticket in FILE:/tmp/krb5cc_0").
func (c Credentials) String() string {
	if c.Keytab != "" {
		return fmt.Sprintf("principal %s from keytab %s", c.Principal, c.Keytab)
	}
	return "the ticket in " + c.ccachePath()
}

func (c Credentials) ccachePath() string {
	p := c.CCache
	if p == "" {
		p = os.Getenv("KRB5CCNAME")
	}
	if p == "" {
		p = fmt.Sprintf("/tmp/krb5cc_%d", os.Getuid())
	}
	return p
}

func (c Credentials) configPath() string {
	if c.KRB5Config != "" {
		return c.KRB5Config
	}
	if p := os.Getenv("KRB5_CONFIG"); p != "" {
		return strings.SplitN(p, ":", 2)[0]
	}
	return "/etc/krb5.conf"
}

// Client loads krb5.conf and the credentials and returns a logged-in Kerberos client.
func (c Credentials) Client() (*client.Client, error) {
	cfgPath := c.configPath()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, fail(ReasonOther, err, "reading Kerberos configuration %s (set KRB5_CONFIG or --krb5-config)", cfgPath)
	}
	if c.Keytab != "" {
		if c.Principal == "" {
			return nil, fail(ReasonNoCredential, nil, "a keytab needs the principal to log in as (--krb5-principal NAME@REALM)")
		}
		kt, err := keytab.Load(c.Keytab)
		if err != nil {
			return nil, fail(ReasonNoCredential, err, "reading keytab %s", c.Keytab)
		}
		name, realm, _ := strings.Cut(c.Principal, "@")
		if realm == "" {
			realm = cfg.LibDefaults.DefaultRealm
		}
		cl := client.NewWithKeytab(name, realm, kt, cfg, client.DisablePAFXFAST(true))
		if err := cl.Login(); err != nil {
			return nil, kerberosError(err, "krbtgt/"+realm)
		}
		return cl, nil
	}
	path := c.ccachePath()
	file, ok := strings.CutPrefix(path, "FILE:")
	if !ok && strings.Contains(path, ":") && !strings.HasPrefix(path, "/") {
		kind, _, _ := strings.Cut(path, ":")
		return nil, fail(ReasonNoCredential, nil, "credential cache %s is of type %s, which this tool cannot read: run kinit with KRB5CCNAME=FILE:/path, or give --krb5-keytab", path, kind)
	}
	cc, err := credentials.LoadCCache(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fail(ReasonNoCredential, nil, "no Kerberos ticket: %s does not exist (run kinit NAME@REALM first, or give --krb5-keytab)", file)
		}
		return nil, fail(ReasonNoCredential, err, "reading credential cache %s", file)
	}
	cl, err := client.NewFromCCache(cc, cfg, client.DisablePAFXFAST(true))
	if err != nil {
		return nil, fail(ReasonNoCredential, err, "no usable Kerberos ticket in %s (expired? run kinit again)", file)
	}
	return cl, nil
}
