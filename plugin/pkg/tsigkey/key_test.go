package tsigkey

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// testSecret is 32 bytes, as tsig-keygen makes them.
const testSecret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec    string
		want    Key
		wantErr string
	}{
		{spec: "hmac-sha256:kms1-key:" + testSecret, want: Key{"kms1-key.", dns.HmacSHA256, testSecret}},
		{spec: "  HMAC-SHA512.:KMS1-Key.:" + testSecret + "\n", want: Key{"kms1-key.", dns.HmacSHA512, testSecret}},
		{spec: "hmac-sha1:k.example:" + testSecret, want: Key{"k.example.", dns.HmacSHA1, testSecret}},
		{spec: "hmac-sha224:_k:" + testSecret, want: Key{"_k.", dns.HmacSHA224, testSecret}},
		{spec: "hmac-sha384:k:" + testSecret, want: Key{"k.", dns.HmacSHA384, testSecret}},
		{spec: "kms1-key:" + testSecret, want: Key{"kms1-key.", dns.HmacSHA256, testSecret}},
		{spec: "", wantErr: "key spec is empty"},
		{spec: "kms1-key", wantErr: "1 colon-separated fields"},
		{spec: "a:b:c:d", wantErr: "4 colon-separated fields"},
		{spec: "hmac-md5:k:" + testSecret, wantErr: "hmac-md5 is not supported"},
		{spec: "hmac-md5.sig-alg.reg.int:k:" + testSecret, wantErr: "hmac-md5.sig-alg.reg.int is not supported"},
		{spec: "hmac-sha3:k:" + testSecret, wantErr: `unknown TSIG algorithm "hmac-sha3"`},
		{spec: "sha256:k:" + testSecret, wantErr: "unknown TSIG algorithm (want"},
		{spec: "hmac-sha256::" + testSecret, wantErr: "key name is empty"},
		{spec: "hmac-sha256:.:" + testSecret, wantErr: "key name is empty"},
		{spec: "hmac-sha256:a..b:" + testSecret, wantErr: "not a valid domain name"},
		{spec: "hmac-sha256:.a:" + testSecret, wantErr: "not a valid domain name"},
		{spec: "hmac-sha256:" + strings.Repeat("a", 64) + ":" + testSecret, wantErr: "not a valid domain name"},
		{spec: "hmac-sha256:k\xc3\xa9y:" + testSecret, wantErr: "punycode"},
		{spec: `hmac-sha256:a\.b:` + testSecret, wantErr: "letters, digits"},
		{spec: "hmac-sha256:a/b:" + testSecret, wantErr: "letters, digits"},
		{spec: "hmac-sha256:k:", wantErr: "secret is empty"},
		{spec: "hmac-sha256:k:not*base64", wantErr: "secret is not base64"},
		{spec: "hmac-sha256:k:" + strings.TrimRight(testSecret, "="), wantErr: "secret is not base64"},
		{spec: "hmac-sha256:k:c2hvcnQ=", wantErr: "secret is 5 bytes, want at least 16"},
		{spec: "hmac-sha256:k:" + strings.Repeat("QUFB", 200), wantErr: "secret is longer than 512 bytes"},
		{spec: strings.Repeat("x", MaxSpecLen+1), wantErr: "longer than 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.spec[:min(len(tt.spec), 30)], func(t *testing.T) {
			got, err := ParseSpec(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSpec: %v, want error containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testSecret) {
					t.Fatalf("error %q holds the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if strings.Contains(got.String(), got.Secret) {
				t.Errorf("String() %q reveals the secret", got.String())
			}
		})
	}
}

func TestSecretCanonical(t *testing.T) {
	// The same bytes compare equal once parsed, however they were written.
	a, err := New("hmac-sha256", "K", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New("HMAC-SHA256.", "k.", testSecret)
	if err != nil || a != b {
		t.Fatalf("%+v != %+v (%v)", a, b, err)
	}
}
