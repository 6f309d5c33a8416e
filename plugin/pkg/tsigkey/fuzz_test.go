package tsigkey

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary key files to Parse, alone and with a secret
// spliced in as a value, a quoted string and a spec field: every accepted
// key is valid and canonical, and no error holds any piece of the secret.
func FuzzParse(f *testing.F) {
	f.Add([]byte(bindKey), "key k { algorithm hmac-sha256; secret ", "; };")
	f.Add([]byte("hmac-sha256:kms1-key:"+testSecret+"\n"), "hmac-sha256:k:", "")
	f.Add([]byte("key k { /* */ algorithm hmac-sha1; secret \"\"; };"), "key ", " { algorithm hmac-sha1; };")
	f.Add([]byte("key a { algorithm hmac-sha1; secret \""+testSecret+"\"; }; key a { };"), "", ":k")
	f.Add([]byte("# c\n// c\nk:"+testSecret), "key k { secret x; algorithm ", "; };")
	f.Fuzz(func(t *testing.T, data []byte, pre, post string) {
		for _, in := range [][]byte{data, []byte(pre + leakSecret + post), []byte(pre + `"` + leakSecret + `"` + post)} {
			keys, err := Parse(in)
			if err != nil {
				assertNoSecret(t, string(in), err)
				continue
			}
			if len(keys) == 0 {
				t.Fatal("no error and no keys")
			}
			for _, k := range keys {
				again, err := New(k.Algorithm, k.Name, k.Secret)
				if err != nil || again != k {
					t.Fatalf("accepted key %v is not canonical: %+v, %v", k, again, err)
				}
			}
		}
	})
}

// FuzzParseSpec: a spec parses to a canonical key that parses again to
// itself, or is rejected without the secret in the error.
func FuzzParseSpec(f *testing.F) {
	f.Add("hmac-sha256:kms1-key:" + testSecret)
	f.Add("kms1-key:" + testSecret)
	f.Add("hmac-md5:k:" + testSecret)
	f.Add("::")
	f.Fuzz(func(t *testing.T, spec string) {
		for _, in := range []string{spec, spec + leakSecret, leakSecret + spec, strings.Replace(spec, ":", ":"+leakSecret, 1)} {
			k, err := ParseSpec(in)
			if err != nil {
				assertNoSecret(t, in, err)
				continue
			}
			again, err := ParseSpec(strings.TrimSuffix(k.Algorithm, ".") + ":" + k.Name + ":" + k.Secret)
			if err != nil || again != k {
				t.Fatalf("canonical key %v does not round-trip: %+v, %v", k, again, err)
			}
		}
	})
}
