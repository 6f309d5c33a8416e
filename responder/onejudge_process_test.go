package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"

	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/harness"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// TestProcessFlippedCountByte: one flipped byte in a count entry of
// ledger.db (bbolt has no checksums on its pages): `ledger check` says
// DAMAGED and serve refuses to start with the very message check prints;
// neither changes the file, so the evidence stays.
func TestProcessFlippedCountByte(t *testing.T) {
	data := t.TempDir()
	win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
	p := harness.StartResponder(t, data, "--group", "windows-server-2025")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cmids []guid.GUID
	for i := range 3 {
		cmid := kmsclient.RandomCMID()
		cmids = append(cmids, cmid)
		a, err := activateGo(ctx, p.Addr, win, cmid, true, 1)
		if err != nil {
			t.Fatal(err)
		}
		wantAnswer(t, "setup", a, uint32(i+1))
	}
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	db := filepath.Join(data, ledger.FileName)
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	// The count entry of client 1: its CMID as the key, then a 9-byte
	// value and the CRC-32C over the application, the CMID and the value.
	table := crc32.MakeTable(crc32.Castagnoli)
	at := -1
	for off := 0; ; off++ {
		i := bytes.Index(b[off:], cmids[1][:])
		if i < 0 {
			break
		}
		off += i
		if off+16+13 <= len(b) {
			v := b[off+16 : off+16+9]
			sum := crc32.Update(crc32.Update(crc32.Checksum(win.AppID[:], table), table, cmids[1][:]), table, v)
			if binary.BigEndian.Uint32(b[off+25:]) == sum {
				at = off
				break
			}
		}
	}
	if at < 0 {
		t.Fatal("count entry not found in ledger.db")
	}
	b[at+20] ^= 0x01 // a bit of the last-seen time
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep := checkReport(t, data)
	if rep.OK || rep.Files[0].State != "damaged" || !strings.Contains(rep.Files[0].Detail, "checksum") {
		t.Fatalf("ledger check on a flipped count byte: %+v", rep)
	}
	serveRefuses(t, data, rep.Files[0].Detail)
	after, _ := os.ReadFile(db)
	if !bytes.Equal(after, b) {
		t.Error("serve or check changed the damaged ledger.db")
	}
}

// serveUnhealthy runs serve on data without waiting for a healthy
// /healthz, reads its status and /healthz code once it answers, and stops
// it with SIGTERM.
func serveUnhealthy(t *testing.T, data string) (statusapi.Report, int) {
	t.Helper()
	admin := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	cmd := exec.Command(harness.ProcessBinary(t, "kms-responder"), "serve", "--data", data, "--group", "windows-server-2025",
		"--listen", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)), "--metrics", admin)
	var stderr harness.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	var st statusapi.Report
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		stdout, _, code := runCLI(t, "status", "--admin", admin, "--json")
		if code == exitOK {
			if err := json.Unmarshal([]byte(stdout), &st); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up:\n%s", stderr.String())
		}
	}
	resp, err := http.Get("http://" + admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return st, resp.StatusCode
}

// TestProcessClockAheadDeletesNothing: serve starts on a ledger whose
// newest client was answered 31 or 181 days before the machine's clock (as
// after a restart with the clock that far ahead): it deletes neither count
// entries nor audit records, says why in its log, and the ledger read at
// the records' own time still holds them all.
func TestProcessClockAheadDeletesNothing(t *testing.T) {
	for _, days := range []int{31, 181} {
		t.Run(strconv.Itoa(days)+" days", func(t *testing.T) {
			data := t.TempDir()
			past := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
			clock := func() time.Time { return past }
			l, err := ledger.Open(data, ledger.Options{Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			win := testProduct(t, clientFlags{product: "Windows 10/11 Enterprise"})
			for range 3 {
				a := ledger.Activation{Time: past, CMID: kmsclient.RandomCMID(), App: win.AppID, CountedID: win.KMSID, SKU: win.SKUID,
					Workstation: "PC", Source: "127.0.0.1:1", Protocol: 6, Counted: true, Cap: 50}
				if err := l.Record(context.Background(), a); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			p := harness.StartResponder(t, data, "--group", "windows-server-2025")
			if code := p.Stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("serve exit %d", code)
			}
			if !strings.Contains(p.Stderr.String(), "not pruning audit records") || !strings.Contains(p.Stderr.String(), "not trimming expired count entries") {
				t.Errorf("serve's log does not say why it did not prune:\n%s", p.Stderr.String())
			}
			l, err = ledger.Open(data, ledger.Options{Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if s := l.Stats(); s.Clients != 3 {
				t.Errorf("%d audit records left, want 3", s.Clients)
			}
			cs, err := l.Counts()
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 1 || len(cs[0].Clients) != 3 {
				t.Errorf("counts left %+v, want the 3 clients", cs)
			}
		})
	}
}
