package test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kmsdns/kmsdns/test/harness"
)

// unusedUID returns a uid no user has, from systemd's DynamicUser range
// (61184-65519), as the shipped units run the binaries.
func unusedUID(t *testing.T) int {
	t.Helper()
	for uid := 61184 + os.Getpid()%1000; uid < 65519; uid++ {
		if _, err := user.LookupId(strconv.Itoa(uid)); err != nil {
			return uid
		}
	}
	t.Skip("no unused uid in 61184-65519")
	return 0
}

// posixACL encodes the access ACL systemd gives a credential: the owner's
// bits, read (and search, for a directory) for uid, nothing for group and
// others; the mask shows as the group bits of the mode.
func posixACL(owner, forUID uint16, uid int) []byte {
	const undefined = 0xffffffff
	b := binary.LittleEndian.AppendUint32(nil, 2) // POSIX_ACL_XATTR_VERSION
	entry := func(tag, perm uint16, id uint32) {
		b = binary.LittleEndian.AppendUint16(b, tag)
		b = binary.LittleEndian.AppendUint16(b, perm)
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	entry(0x01, owner, undefined)    // ACL_USER_OBJ
	entry(0x02, forUID, uint32(uid)) // ACL_USER
	entry(0x04, 0, undefined)        // ACL_GROUP_OBJ
	entry(0x10, forUID, undefined)   // ACL_MASK
	entry(0x20, 0, undefined)        // ACL_OTHER
	return b
}

// credentialsDir lays out files as systemd's LoadCredential= does for a
// service running as uid: a directory, root-owned, mode 0500 with an ACL
// letting uid search it, holding each file root-owned, mode 0400 with an
// ACL letting uid read it (ls shows r--r-----+). Where the file system
// has no ACLs systemd chowns the copies to uid instead, and so does this.
func credentialsDir(t *testing.T, dir string, uid int, files map[string]string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	acl := true
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o400); err != nil {
			t.Fatal(err)
		}
		err := unix.Setxattr(p, "system.posix_acl_access", posixACL(4, 4, uid), 0)
		if errors.Is(err, unix.EOPNOTSUPP) {
			acl = false
			err = os.Chown(p, uid, uid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	var err error
	if acl {
		err = unix.Setxattr(dir, "system.posix_acl_access", posixACL(5, 5, uid), 0)
	} else {
		err = os.Chown(dir, uid, uid)
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, firstKey(files)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("credentials in %s: mode %04o (ACL: %v)", dir, fi.Mode().Perm(), acl)
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

// asService runs bin as uid with no supplementary groups and
// CREDENTIALS_DIRECTORY set, as the shipped units do (DynamicUser=,
// LoadCredential=), through setpriv.
func asService(t *testing.T, dir string, uid int, creds, bin string, args ...string) *harness.Process {
	t.Helper()
	id := strconv.Itoa(uid)
	full := append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups", "--", "env", "CREDENTIALS_DIRECTORY=" + creds, bin}, args...)
	return harness.Start(t, dir, harness.Tool(t, "setpriv"), full...)
}

// TestSystemdCredentials starts both binaries the way the shipped units do
// (build/systemd/): as an unused uid, with their TSIG keys and the
// responder's config handed over as systemd lays out credentials, and the
// responder's data directory reached, as StateDirectory= with DynamicUser=
// makes it, through a root-owned link into private/. The responder must
// start from `serve --config %d/config.yaml --tsig-key-file %d/tsig.key`
// and register, signed with the key, at the CoreDNS whose `keyfile` is
// {$CREDENTIALS_DIRECTORY}/vlmcs.keys.
func TestSystemdCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: lays out root-owned credentials and runs the binaries as another uid")
	}
	harness.ProcessBinary(t, "kms-responder") // skips with -short
	uid := unusedUID(t)
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} { // the service must get in
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(p string, mode os.FileMode, owner int) string {
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, owner, owner); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := mkdir(filepath.Join(base, "credentials"), 0o755, 0) // /run/credentials
	lib := mkdir(filepath.Join(base, "lib"), 0o755, 0)         // /var/lib
	mkdir(filepath.Join(lib, "private"), 0o755, 0)             // as the service sees it
	mkdir(filepath.Join(lib, "private", "kms-responder"), 0o755, uid)
	data := filepath.Join(lib, "kms-responder")
	if err := os.Symlink("private/kms-responder", data); err != nil {
		t.Fatal(err)
	}

	// CoreDNS, keyfile from its credentials.
	dnsCreds := filepath.Join(run, "coredns-kmsdns.service")
	credentialsDir(t, dnsCreds, uid, map[string]string{
		"vlmcs.keys": "key \"kms1-key.\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + secret1 + "\";\n};\n",
	})
	c := &harness.CoreDNS{Dir: mkdir(filepath.Join(base, "coredns"), 0o755, 0), Port: harness.FreePort(t)}
	c.WriteCorefile(t, `example.test:{{PORT}} {
	bind 127.0.0.1
	errors
	vlmcs {
		approve kms1.example.test 127.0.0.0/8
		ports 1024-65535
		keyfile {$CREDENTIALS_DIRECTORY}/vlmcs.keys
		grant kms1-key. kms1.example.test
		lease 1h 2s 1h
		probe 10s 1s 3 1
		all_down none
		ttl 1
	}
}
`)
	if err := os.Chmod(filepath.Join(c.Dir, "Corefile"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Process = asService(t, c.Dir, uid, dnsCreds, harness.Binary(t, "coredns"), "-conf", "Corefile")
	c.WaitServing(t, 10*time.Second)

	// The responder, config and key from its credentials.
	port := harness.FreePort(t)
	creds := filepath.Join(run, "kms-responder.service")
	credentialsDir(t, creds, uid, map[string]string{
		"config.yaml": fmt.Sprintf(`groups: [windows-server-2025]
listen: ["127.0.0.1:%d"]
data: %s
metrics: ""
register:
  servers: ["%s"]
  zone: example.test
  target: kms1.example.test
  addresses: [127.0.0.1]
  port: %d
  lease: 10s
`, port, data, c.Addr(), port),
		"tsig.key": "hmac-sha256:kms1-key.:" + secret1 + "\n",
	})
	r := asService(t, base, uid, creds, harness.Binary(t, "kms-responder"),
		"serve", "--config", creds+"/config.yaml", "--tsig-key-file", creds+"/tsig.key")
	member := "kms1.example.test.:" + strconv.Itoa(port)
	harness.Eventually(t, 15*time.Second, "the responder's start and signed registration", func() bool {
		if r.Exited() {
			t.Fatalf("kms-responder exited with %d:\n%s", r.Wait(0), r.Output())
		}
		return srvSet(t, c, "_vlmcs._tcp.example.test")[member]
	})
	// The ledger is the service user's, in the private directory.
	fi, err := os.Stat(filepath.Join(lib, "private", "kms-responder", "ledger.db"))
	if err != nil {
		t.Fatalf("no ledger in the state directory: %v\n%s", err, r.Output())
	}
	if got, _ := fi.Sys().(*syscall.Stat_t); got == nil || got.Uid != uint32(uid) {
		t.Errorf("ledger.db owned by %v, want uid %d", fi.Sys(), uid)
	}
	if !strings.Contains(r.Output(), "kms-responder serving") {
		t.Errorf("the responder did not log its start:\n%s", r.Output())
	}
	if strings.Contains(r.Output()+c.Output(), secret1) {
		t.Error("a log shows the secret")
	}
}

// unitLines returns the values of key= in the unit file build/systemd/name.
func unitLines(t *testing.T, name, key string) []string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "build", "systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestUnitsCheckCredentialSources runs the units' ExecStartPre= checks
// (root, "+") on credential sources laid out in a temporary /etc: the
// files root owns at 0600 pass; one readable by others, or owned by
// another user, stops the start (exit 1) with what to run.
func TestUnitsCheckCredentialSources(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the checks run as root and files are given to another user")
	}
	bin := harness.ProcessBinary(t, "kms-responder")
	type check func(etc string) (int, string)
	run := func(name string, args ...string) (int, string) {
		out, err := exec.Command(name, args...).CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%s: %v", name, err)
		}
		if ee != nil {
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	var responder []check
	for _, v := range unitLines(t, "kms-responder.service", "ExecStartPre") {
		v, ok := strings.CutPrefix(v, "+")
		if !ok {
			t.Fatalf("ExecStartPre=%s does not run as root (+): a dynamic user cannot see the sources", v)
		}
		f := strings.Fields(v)
		if f[0] != "/usr/local/bin/kms-responder" {
			t.Fatalf("ExecStartPre=%s runs something else", v)
		}
		responder = append(responder, func(etc string) (int, string) {
			args := make([]string, 0, len(f)-1)
			for _, a := range f[1:] {
				args = append(args, strings.ReplaceAll(a, "/etc/kms-responder/", etc+"/"))
			}
			return run(bin, args...)
		})
	}
	if len(responder) != 2 {
		t.Fatalf("kms-responder.service checks %d sources, want config.yaml and tsig.key", len(responder))
	}
	pre := unitLines(t, "coredns-kmsdns.service", "ExecStartPre")
	if len(pre) != 1 || !strings.HasPrefix(pre[0], "+/bin/sh -c '") || !strings.HasSuffix(pre[0], "'") {
		t.Fatalf("coredns-kmsdns.service ExecStartPre=%q, want one +/bin/sh -c '...'", pre)
	}
	// systemd's unquoting: "$$" is "$", "\\" is "\".
	script := strings.TrimSuffix(strings.TrimPrefix(pre[0], "+/bin/sh -c '"), "'")
	script = strings.NewReplacer("$$", "$", `\\`, `\`).Replace(script)
	coredns := func(etc string) (int, string) {
		return run("/bin/sh", "-c", strings.ReplaceAll(script, "/etc/coredns-kmsdns/", etc+"/"))
	}

	for _, tc := range []struct {
		name       string
		file       string
		mode       os.FileMode
		uid        int
		checks     []check
		wantFailed string // "" for every check passing
	}{
		{"responder sources root's and 0600", "", 0, 0, responder, ""},
		{"responder config readable by others", "config.yaml", 0o644, 0, responder, "permissions 0644 are too open"},
		{"responder key owned by another user", "tsig.key", 0o600, 65534, responder, "run `chown root "},
		{"coredns key root's and 0600", "", 0, 0, []check{coredns}, ""},
		{"coredns key readable by group", "vlmcs.keys", 0o640, 0, []check{coredns}, "must be root-owned and accessible by root alone: run chown root"},
		{"coredns key owned by another user", "vlmcs.keys", 0o600, 65534, []check{coredns}, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etc := filepath.Join(t.TempDir(), "etc")
			if err := os.Mkdir(etc, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"config.yaml", "tsig.key", "vlmcs.keys"} {
				mode, uid := os.FileMode(0o600), 0
				if n == tc.file {
					mode, uid = tc.mode, tc.uid
				}
				p := filepath.Join(etc, n)
				if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(p, uid, uid); err != nil {
					t.Fatal(err)
				}
			}
			failed := ""
			for _, c := range tc.checks {
				code, out := c(etc)
				if code != 0 {
					if code != 1 {
						t.Errorf("exit %d, want 1:\n%s", code, out)
					}
					failed += out
				}
			}
			switch {
			case tc.wantFailed == "" && failed != "":
				t.Errorf("the start would be refused:\n%s", failed)
			case tc.wantFailed != "" && !strings.Contains(failed, tc.wantFailed):
				t.Errorf("the start would go on, or says no fix (want %q):\n%s", tc.wantFailed, failed)
			}
		})
	}
}
