package host

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/test/testkit"
)

var (
	app2010     = guid.MustParse("59a52881-a989-479d-af46-f275c6370663")
	idWin10R    = guid.MustParse("e1c51358-fe3e-4203-a4a2-3b6b20c9734e") // retail
	idWinPrev   = guid.MustParse("5f94a0bb-d5a0-4081-a685-5819418b2fe0") // preview
	idMulti     = guid.MustParse("cbdcb1ba-e093-4c81-a463-10775291fdf9") // Azure-only
	idWS2019    = guid.MustParse("8449b1fb-f0ea-497a-99ab-66ca96e9a0f5")
	idWS2022    = guid.MustParse("b74263e4-0f92-46c6-bcf8-c11d5efe2959")
	idWS2025    = guid.MustParse("907f1f65-adcd-4a2e-95bc-4bf500bc6e58")
	idOffice16  = guid.MustParse("85b5f61b-320b-4be3-814a-b76b2bfafc82")
	idOffice19  = guid.MustParse("617d9eb1-ef36-4f82-86e0-a65ae07b96c6")
	idOffice10  = guid.MustParse("e85af946-2e25-47b7-83e1-bebcebeac611")
	idUnknown   = guid.MustParse("01234567-89ab-4def-8123-456789abcdef")
	skuWS2025DC = guid.MustParse("c052f164-cdf6-409a-a0cb-853ba0f0f55a")
)

type fixture struct {
	t     *testing.T
	clock *testkit.Clock
	dir   string
	cfg   Config
	store *ledger.Ledger
	host  *Host
}

// newFixture starts a host with a ledger in a fresh directory.
func newFixture(t *testing.T, groups ...string) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: testkit.NewClock(), dir: t.TempDir()}
	f.cfg = Config{Groups: groups, Clock: f.clock.Now}
	f.start()
	return f
}

// start opens the ledger and the host from f.cfg.
func (f *fixture) start() {
	f.t.Helper()
	l, err := ledger.Open(f.dir, ledger.Options{Clock: f.clock.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	f.store = l
	f.t.Cleanup(func() { l.Close() })
	h, err := New(f.cfg, catalog.Default(), l, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.host = h
}

// restart closes the ledger and starts again on the same directory.
func (f *fixture) restart() {
	f.t.Helper()
	if err := f.store.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.start()
}

// request is a well-formed request from client i for (app, counted ID).
func (f *fixture) request(i int, app, counted guid.GUID) Input {
	return Input{
		App: app, CountedID: counted, SKU: skuWS2025DC, CMID: testkit.CMID(i),
		NPolicy: 25, ClientTime: f.clock.Now(), Workstation: fmt.Sprintf("PC-%03d", i),
		LicenseStatus: 2, ProtocolMajor: 6, Peer: netip.MustParseAddrPort("127.0.0.1:50000"),
	}
}

func (f *fixture) activate(in Input) Result {
	f.t.Helper()
	res, err := f.host.Activate(context.Background(), in)
	if err != nil {
		f.t.Fatalf("Activate: %v", err)
	}
	return res
}

// count activates client i and returns the count it was told.
func (f *fixture) count(i int, app, counted guid.GUID) int {
	f.t.Helper()
	res := f.activate(f.request(i, app, counted))
	if res.HRESULT != kms.OK {
		f.t.Fatalf("client %d refused: %v (%s)", i, res.HRESULT, res.Reason)
	}
	return res.CurrentCount
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, "windows-server-2019", "office-2016")
	tests := []struct {
		name   string
		mod    func(*Input)
		want   kms.HRESULT
		reason string
	}{
		{"covered client", func(*Input) {}, kms.OK, "counted, below threshold: count 1 of 25 needed, by windows-server-2019"},
		{"covered client at its threshold", func(in *Input) { in.NPolicy = 1 }, kms.OK, "activated by windows-server-2019"},
		{"covered server", func(in *Input) { in.CountedID = idWS2019 }, kms.OK, "new client"},
		{"covered Office", func(in *Input) { in.App, in.CountedID = testkit.AppOffice, idOffice16 }, kms.OK, "office-2016"},
		{"unknown SKU still activates", func(in *Input) { in.SKU = idUnknown }, kms.OK, ""},
		{"newer server than the group", func(in *Input) { in.CountedID = idWS2025 }, kms.ErrKMSIDMismatch, "not activated by the configured host key group"},
		{"other Office version", func(in *Input) { in.App, in.CountedID = testkit.AppOffice, idOffice19 }, kms.ErrKMSIDMismatch, "Office 2019"},
		{"Office 2010 without its group", func(in *Input) { in.App, in.CountedID = app2010, idOffice10 }, kms.ErrKMSIDMismatch, "not activated"},
		{"retail", func(in *Input) { in.CountedID = idWin10R }, kms.ErrKMSIDMismatch, "is retail"},
		{"preview", func(in *Input) { in.CountedID = idWinPrev }, kms.ErrKMSIDMismatch, "preview/lab"},
		{"Azure-only", func(in *Input) { in.CountedID = idMulti }, kms.ErrKMSIDMismatch, "Azure-only"},
		{"unknown counted ID", func(in *Input) { in.CountedID = idUnknown }, kms.ErrKMSIDMismatch, "unknown counted ID"},
		{"counted ID under the wrong app", func(in *Input) { in.App = testkit.AppOffice }, kms.ErrKMSIDMismatch, "belongs to application"},
		{"clock 4h ahead is fine", func(in *Input) { in.ClientTime = in.ClientTime.Add(4 * time.Hour) }, kms.OK, ""},
		{"clock 4h01 ahead", func(in *Input) { in.ClientTime = in.ClientTime.Add(4*time.Hour + time.Minute) }, kms.ErrInvalidTimestamp, "limit 4h0m0s"},
		{"clock 5h behind", func(in *Input) { in.ClientTime = in.ClientTime.Add(-5 * time.Hour) }, kms.ErrInvalidTimestamp, "5h0m0s"},
		{"zero client time", func(in *Input) { in.ClientTime = time.Time{} }, kms.ErrInvalidTimestamp, ""},
		{"N_Policy 1000", func(in *Input) { in.NPolicy = 1000 }, kms.OK, ""},
		{"N_Policy 1001", func(in *Input) { in.NPolicy = 1001 }, kms.ErrInvalidData, "exceeds 1000"},
		{"N_Policy beats skew", func(in *Input) { in.NPolicy, in.ClientTime = 5000, time.Time{} }, kms.ErrInvalidData, ""},
		{"skew beats product", func(in *Input) { in.CountedID, in.ClientTime = idUnknown, time.Time{} }, kms.ErrInvalidTimestamp, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := f.request(i, testkit.AppWindows, testkit.KMSWin10)
			tt.mod(&in)
			res := f.activate(in)
			if res.HRESULT != tt.want || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("got %v %q, want %v with reason containing %q", res.HRESULT, res.Reason, tt.want, tt.reason)
			}
			if tt.want != kms.OK {
				if res.CurrentCount != 0 || res.EPID != "" || res.Group != "" {
					t.Fatalf("refusal carries a response: %+v", res)
				}
			} else if res.EPID == "" || res.CurrentCount < 1 || res.Group == "" {
				t.Fatalf("success lacks its response fields: %+v", res)
			}
			c, ok, err := f.store.Client(in.CMID, in.App)
			if err != nil || !ok || c.LastResult != uint32(tt.want) {
				t.Fatalf("audit record %+v ok=%v err=%v, want result %v", c, ok, err, tt.want)
			}
		})
	}
}

func TestCounting(t *testing.T) {
	f := newFixture(t, "windows-server-2025", "office-ltsc-2024", "office-2010")
	steps := []struct {
		name    string
		client  int
		app, id guid.GUID
		want    int
	}{
		{"first server", 1, testkit.AppWindows, idWS2025, 1},
		{"second server", 2, testkit.AppWindows, idWS2022, 2},
		{"third server", 3, testkit.AppWindows, idWS2019, 3},
		{"repeat of the first", 1, testkit.AppWindows, idWS2025, 3},
		{"fourth", 4, testkit.AppWindows, idWS2025, 4},
		{"Office counts apart", 1, testkit.AppOffice, guid.MustParse("a8973cb5-bf03-0a4c-9cef-703099645ab3"), 1},
		{"Office 2010 apart again", 1, app2010, idOffice10, 1},
		{"Windows unchanged by Office", 4, testkit.AppWindows, idWS2025, 4},
	}
	for _, s := range steps {
		if got := f.count(s.client, s.app, s.id); got != s.want {
			t.Fatalf("%s: count %d, want %d", s.name, got, s.want)
		}
	}
}

func TestCapGrowsAndNeverShrinks(t *testing.T) {
	f := newFixture(t, "windows-server-2025")
	var got int
	// Servers only: threshold 5, so the host keeps 10.
	for i := 1; i <= 14; i++ {
		got = f.count(i, testkit.AppWindows, idWS2025)
		if want := min(i, 10); got != want {
			t.Fatalf("server %d: count %d, want %d", i, got, want)
		}
	}
	// A Windows client (threshold 25) raises the cap to 50: the ten cached
	// servers plus the client.
	if got = f.count(100, testkit.AppWindows, testkit.KMSWin10); got != 11 {
		t.Fatalf("first Windows client: count %d, want 11", got)
	}
	for i := 101; i < 150; i++ {
		got = f.count(i, testkit.AppWindows, testkit.KMSWin10)
	}
	if got != 50 {
		t.Fatalf("after 60 distinct clients: count %d, want the cap of 50", got)
	}
	// Back to servers only, and a restart: the cap stays 50.
	f.restart()
	if got = f.count(200, testkit.AppWindows, idWS2025); got != 50 {
		t.Fatalf("after restart: count %d, want 50", got)
	}
	st := f.host.Status()
	for _, a := range st.Apps {
		if a.AppID == testkit.AppWindows.String() && (a.Cap != 50 || a.Count != 50 || fmt.Sprint(a.Thresholds) != "[5 25]") {
			t.Fatalf("status %+v", a)
		}
	}
	// All age out; the cap does not shrink, the count starts again at 1.
	f.clock.Advance(31 * 24 * time.Hour)
	if got = f.count(300, testkit.AppWindows, idWS2025); got != 1 {
		t.Fatalf("after 31 days: count %d, want 1", got)
	}
	for i := 301; i < 330; i++ {
		got = f.count(i, testkit.AppWindows, idWS2025)
	}
	if got != 30 {
		t.Fatalf("30 servers after the cap reached 50: count %d, want 30", got)
	}
}

func TestAgeing(t *testing.T) {
	f := newFixture(t, "windows-server-2025")
	for i := 1; i <= 3; i++ {
		f.count(i, testkit.AppWindows, testkit.KMSWin10)
	}
	f.clock.Advance(29 * 24 * time.Hour)
	if got := f.count(1, testkit.AppWindows, testkit.KMSWin10); got != 3 { // renewal refreshes client 1
		t.Fatalf("renewal at day 29: count %d, want 3", got)
	}
	f.clock.Advance(2 * 24 * time.Hour) // day 31: clients 2 and 3 are gone
	if got := f.count(4, testkit.AppWindows, testkit.KMSWin10); got != 2 {
		t.Fatalf("day 31: count %d, want 2 (renewed client and requester)", got)
	}
	if got := f.host.Count(testkit.AppWindows); got != 2 {
		t.Fatalf("Count: %d, want 2", got)
	}
	// The same holds after a restart rebuilt the count from the ledger.
	f.restart()
	if got := f.count(5, testkit.AppWindows, testkit.KMSWin10); got != 3 {
		t.Fatalf("after restart: count %d, want 3", got)
	}
	f.clock.Advance(29*24*time.Hour + time.Hour) // client 1 (day 29) expired, 4 and 5 (day 31) not
	f.restart()
	if got := f.host.Count(testkit.AppWindows); got != 2 {
		t.Fatalf("after expiry across restart: count %d, want 2", got)
	}
}

func TestClockJumps(t *testing.T) {
	f := newFixture(t, "windows-server-2025")
	for i := 1; i <= 3; i++ {
		f.count(i, testkit.AppWindows, idWS2025)
	}
	// The host clock jumps back a day: known clients keep their later
	// time, a new one still counts.
	f.clock.Advance(-24 * time.Hour)
	if got := f.count(4, testkit.AppWindows, idWS2025); got != 4 {
		t.Fatalf("after a backward jump: count %d, want 4", got)
	}
	// And forward past the window: only the requester remains.
	f.clock.Advance(60 * 24 * time.Hour)
	if got := f.count(5, testkit.AppWindows, idWS2025); got != 1 {
		t.Fatalf("after a forward jump: count %d, want 1", got)
	}
}

func TestStateAcrossRestart(t *testing.T) {
	f := newFixture(t, "windows-server-2022", "office-2019")
	f.count(1, testkit.AppWindows, idWS2022)
	f.count(2, testkit.AppWindows, testkit.KMSWin10)
	f.count(1, testkit.AppOffice, idOffice19)
	epids, hwid := f.host.EPIDs(), f.host.HwID()
	f.restart()
	if got := f.count(3, testkit.AppWindows, idWS2019); got != 3 {
		t.Fatalf("Windows count after restart %d, want 3", got)
	}
	if got := f.count(2, testkit.AppOffice, idOffice19); got != 2 {
		t.Fatalf("Office count after restart %d, want 2", got)
	}
	if got := f.host.EPIDs(); fmt.Sprint(got) != fmt.Sprint(epids) {
		t.Fatalf("ePIDs changed across restart: %v, then %v", epids, got)
	}
	if f.host.HwID() != hwid {
		t.Fatalf("HwID changed across restart")
	}
	res := f.activate(f.request(9, testkit.AppWindows, testkit.KMSWin10))
	if res.EPID != epids["windows-server-2022"] || res.HwID != hwid {
		t.Fatalf("response identity %q %X, want %q %X", res.EPID, res.HwID, epids["windows-server-2022"], hwid)
	}
	// A fresh ledger is a fresh host: zero count, new identity.
	f.store.Close()
	f.dir = t.TempDir()
	f.start()
	if got := f.host.Count(testkit.AppWindows); got != 0 {
		t.Fatalf("fresh host count %d, want 0", got)
	}
	if f.host.HwID() == hwid {
		t.Fatal("a fresh host reused the old HwID")
	}
}

func TestEPIDGeneration(t *testing.T) {
	cat := catalog.Default()
	for _, g := range cat.Groups() {
		t.Run(g.Name, func(t *testing.T) {
			clock := testkit.NewClock()
			h, err := New(Config{Groups: []string{g.Name}, Clock: clock.Now, LCID: 1031}, cat, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			text := h.EPIDs()[g.Name]
			e, err := kms.ParseEPID(text)
			if err != nil {
				t.Fatalf("generated ePID %q does not parse: %v", text, err)
			}
			builds := cat.HostBuilds()
			newest := builds[len(builds)-1].Build
			want := kms.EPID{Platform: cat.PlatformID(newest), Group: g.EPIDGroupID, KeyID: e.KeyID, Channel: 3,
				LCID: 1031, Build: newest, DayOfYear: 326, Year: 2026}
			if e != want {
				t.Fatalf("ePID %q = %+v, want %+v", text, e, want)
			}
			if e.KeyID < g.KeyIDMin || e.KeyID > g.KeyIDMax {
				t.Fatalf("key ID %d outside the group's range %d-%d", e.KeyID, g.KeyIDMin, g.KeyIDMax)
			}
		})
	}
}

func TestEPIDKeyIDsSpreadOverTheRange(t *testing.T) {
	g, _ := catalog.Default().Group("windows-server-2019")
	m := epidMaterial{platform: 3612, group: g.EPIDGroupID, keyIDMin: g.KeyIDMin, keyIDMax: g.KeyIDMax, lcid: 1033, build: 17763}
	seen := map[int64]bool{}
	for range 50 {
		e, err := generateEPID(m, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		seen[e.KeyID] = true
	}
	if len(seen) < 45 {
		t.Fatalf("50 ePIDs gave only %d distinct key IDs", len(seen))
	}
	if _, err := generateEPID(epidMaterial{keyIDMin: 5, keyIDMax: 4}, time.Now()); err == nil {
		t.Fatal("an empty key ID range was accepted")
	}
}

func TestIdentityOverrides(t *testing.T) {
	f := newFixture(t, "windows-server-2025")
	generated := f.host.EPIDs()["windows-server-2025"]
	override := "03612-04919-000-123456-03-1033-26100.0000-0452026"
	f.cfg.EPIDs = map[string]string{"Windows-Server-2025": override}
	f.cfg.HwID = &[8]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}
	f.restart()
	if got := f.host.EPIDs()["windows-server-2025"]; got != override {
		t.Fatalf("ePID %q, want the override %q", got, override)
	}
	if f.host.HwID() != [8]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77} {
		t.Fatalf("HwID %X, want the override", f.host.HwID())
	}
	// Dropping the override brings back the stored, generated identity.
	f.cfg.EPIDs, f.cfg.HwID = nil, nil
	f.restart()
	if got := f.host.EPIDs()["windows-server-2025"]; got != generated {
		t.Fatalf("ePID %q after removing the override, want the stored %q", got, generated)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no group", Config{}, `run "kms-responder catalog"`},
		{"unknown group", Config{Groups: []string{"windows-server-2030"}}, `unknown host key group "windows-server-2030"`},
		{"duplicate", Config{Groups: []string{"office-2019", "Office-2019"}}, "configured twice"},
		{"two Windows keys", Config{Groups: []string{"windows-server-2019", "windows-server-2022"}}, "both Windows host keys"},
		{"activation too short", Config{Groups: []string{"office-2019"}, ActivationInterval: 14}, "activation interval 14 minutes is outside 15-43200"},
		{"renewal too long", Config{Groups: []string{"office-2019"}, RenewalInterval: 43201}, "renewal interval 43201"},
		{"negative interval", Config{Groups: []string{"office-2019"}, RenewalInterval: -1}, "renewal interval -1"},
		{"LCID", Config{Groups: []string{"office-2019"}, LCID: 70000}, "LCID 70000"},
		{"old build", Config{Groups: []string{"windows-server-2025"}, HostBuild: 9600}, "host build 9600 is older than 17763"},
		{"prehistoric build", Config{Groups: []string{"office-2019"}, HostBuild: 10}, "older than"},
		{"negative skew", Config{Groups: []string{"office-2019"}, MaxClockSkew: -time.Second}, "negative"},
		{"ePID for another group", Config{Groups: []string{"office-2019"}, EPIDs: map[string]string{"office-2016": "x"}}, "not a configured host key group"},
		{"bad ePID", Config{Groups: []string{"office-2019"}, EPIDs: map[string]string{"office-2019": "03612-00206"}}, "ePID for office-2019"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, catalog.Default(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{Groups: []string{"office-2019"}}, nil, nil, nil); err == nil {
		t.Fatal("New without a catalog succeeded")
	}
	// Valid edge values.
	h, err := New(Config{Groups: []string{"office-2019", "office-2016", "windows-7"}, ActivationInterval: 15, RenewalInterval: 43200}, catalog.Default(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := h.Status(); st.ActivationInterval != 15 || st.RenewalInterval != 43200 || len(st.Groups) != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestDefaults(t *testing.T) {
	h, err := New(Config{Groups: []string{"office-2019"}}, catalog.Default(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Activate(context.Background(), Input{App: testkit.AppOffice, CountedID: idOffice19, CMID: testkit.CMID(1), NPolicy: 5, ClientTime: time.Now()})
	if err != nil || res.HRESULT != kms.OK {
		t.Fatalf("%+v %v", res, err)
	}
	if res.ActivationInterval != 120 || res.RenewalInterval != 10080 || res.CurrentCount != 1 {
		t.Fatalf("defaults: %+v", res)
	}
	if e, _ := kms.ParseEPID(res.EPID); e.LCID != 1033 {
		t.Fatalf("default LCID in %q", res.EPID)
	}
}

func TestLedgerFailureRefusesToAnswer(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l, err := ledger.Open(dir, ledger.Options{Clock: clock.Now, MaxSize: 192 << 10, MaxPending: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h, err := New(Config{Groups: []string{"windows-server-2025"}, Clock: clock.Now}, catalog.Default(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	var failure error
	for i := 0; i < 100000 && failure == nil; i++ {
		in := Input{App: testkit.AppWindows, CountedID: testkit.KMSWin10, CMID: testkit.CMID(i), NPolicy: 25, ClientTime: clock.Now(),
			Workstation: strings.Repeat("w", 60), Peer: netip.MustParseAddrPort("[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}
		var res Result
		res, failure = h.Activate(context.Background(), in)
		if failure == nil && res.HRESULT != kms.OK {
			t.Fatalf("refused: %v", res.Reason)
		}
	}
	if failure == nil {
		t.Fatal("no activation failed on a full ledger")
	}
	if !strings.Contains(failure.Error(), "not answering") {
		t.Fatalf("error %q does not say the request goes unanswered", failure)
	}
	if h.Healthy() {
		t.Fatal("host healthy with a failing ledger")
	}
	st := h.Status()
	if st.Ledger.Healthy || st.Ledger.LastError == "" || st.LedgerFailures == 0 {
		t.Fatalf("status does not expose the failure: %+v", st.Ledger)
	}
}

func TestStatus(t *testing.T) {
	f := newFixture(t, "windows-server-2025", "office-ltsc-2024")
	f.count(1, testkit.AppWindows, testkit.KMSWin10)
	f.count(2, testkit.AppWindows, idWS2025)
	f.activate(f.request(3, testkit.AppWindows, idUnknown))
	if err := f.store.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := f.host.Status()
	if len(st.Groups) != 2 || st.Groups[0].Name != "windows-server-2025" || st.Groups[0].EPID == "" || len(st.Groups[0].Activates) < 20 {
		t.Fatalf("groups %+v", st.Groups)
	}
	if len(st.HwID) != 16 {
		t.Fatalf("HwID %q", st.HwID)
	}
	if st.RequestsByResult["0x00000000 (S_OK)"] != 2 || st.RequestsByResult[kms.ErrKMSIDMismatch.Error()] != 1 {
		t.Fatalf("requests by result %v", st.RequestsByResult)
	}
	if st.RequestsByLicense["OOB grace"] != 3 || st.RequestsByGroup["windows-server-2025"] != 2 {
		t.Fatalf("requests by licence %v, by group %v", st.RequestsByLicense, st.RequestsByGroup)
	}
	if !st.LastRequest.Equal(f.clock.Now()) {
		t.Fatalf("last request %v", st.LastRequest)
	}
	byApp := map[string]AppStatus{}
	for _, a := range st.Apps {
		byApp[a.AppID] = a
	}
	if w := byApp[testkit.AppWindows.String()]; w.Count != 2 || w.Cap != 50 || fmt.Sprint(w.Thresholds) != "[5 25]" || w.Name == "" {
		t.Fatalf("Windows status %+v", w)
	}
	if o := byApp[testkit.AppOffice.String()]; o.Count != 0 || fmt.Sprint(o.Thresholds) != "[5]" {
		t.Fatalf("Office status %+v", o)
	}
	if !st.Ledger.Enabled || !st.Ledger.Healthy || st.Ledger.Clients != 2 || st.Ledger.Refusals != 1 {
		t.Fatalf("ledger status %+v", st.Ledger)
	}
}

func TestConcurrentActivations(t *testing.T) {
	f := newFixture(t, "windows-server-2025")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				res, err := f.host.Activate(context.Background(), f.request(w*3+i, testkit.AppWindows, testkit.KMSWin10))
				if err == nil && (res.HRESULT != kms.OK || res.CurrentCount < 1 || res.CurrentCount > 50) {
					err = fmt.Errorf("result %+v", res)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := f.host.Count(testkit.AppWindows); got != 50 {
		t.Fatalf("count %d after 192 clients, want 50", got)
	}
	// The ledger agrees after a restart.
	f.restart()
	if got := f.host.Count(testkit.AppWindows); got != 50 {
		t.Fatalf("count %d after restart, want 50", got)
	}
	if s := f.store.Stats(); s.Clients != 192 {
		t.Fatalf("%d audit records, want 192", s.Clients)
	}
}

func TestLicenseStateName(t *testing.T) {
	for n, want := range map[uint32]string{0: "Unlicensed", 1: "Licensed", 2: "OOB grace", 6: "Extended grace", 7: "Unknown (7)"} {
		if got := LicenseStateName(n); got != want {
			t.Errorf("LicenseStateName(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestLicenseStateBucket: the licence state is a client-chosen uint32, so
// every value outside the known states lands in one statistics bucket.
func TestLicenseStateBucket(t *testing.T) {
	f := newFixture(t, "windows-server-2025")
	const n = 200
	for i := range n {
		in := f.request(1, testkit.AppWindows, testkit.KMSWin10)
		in.LicenseStatus = 7 + uint32(i)*21474836 // 7 .. ~2^32
		f.activate(in)
	}
	in := f.request(1, testkit.AppWindows, testkit.KMSWin10)
	in.LicenseStatus = 0xFFFFFFFF
	f.activate(in)
	f.activate(f.request(1, testkit.AppWindows, testkit.KMSWin10)) // 2: OOB grace
	st := f.host.Status()
	if got := st.RequestsByLicense[UnknownLicenseStates]; got != n+1 {
		t.Errorf("%q = %d, want %d", UnknownLicenseStates, got, n+1)
	}
	if st.RequestsByLicense["OOB grace"] != 1 || len(st.RequestsByLicense) != 2 {
		t.Errorf("requests by licence state %v, want OOB grace 1 and the unknown bucket", st.RequestsByLicense)
	}
	f.host.mu.Lock()
	keys := len(f.host.stats.byLicense)
	f.host.mu.Unlock()
	if keys > len(licenseStates)+1 {
		t.Errorf("%d licence-state keys kept, want at most %d", keys, len(licenseStates)+1)
	}
}

// TestFailedWriteIsNotCounted: a client whose activation
// the ledger could not write is not in the count, so the count answered to
// the next client is what the ledger holds and a restart rebuilds.
func TestFailedWriteIsNotCounted(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l, err := ledger.Open(dir, ledger.Options{Clock: clock.Now, MaxSize: 192 << 10, MaxPending: 50})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Groups: []string{"windows-server-2025"}, Clock: clock.Now}, catalog.Default(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := func(i int, counted guid.GUID) Input {
		return Input{App: testkit.AppWindows, CountedID: counted, CMID: testkit.CMID(i), NPolicy: 25, ClientTime: clock.Now(),
			Workstation: strings.Repeat("w", 60), Peer: netip.MustParseAddrPort("[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}
	}
	// Fill the store with refusals (no count) until writes fail.
	unknown := guid.MustParse("00000000-0000-0000-0000-0000000000ff")
	i := 0
	for ; i < 100000; i++ {
		if _, err := h.Activate(context.Background(), in(i, unknown)); err != nil {
			break
		}
	}
	if i == 100000 {
		t.Fatal("the full ledger never failed")
	}
	for j := range 5 {
		if _, err := h.Activate(context.Background(), in(1_000_000+j, testkit.KMSWin10)); err == nil {
			t.Fatal("an activation was answered on the full ledger")
		}
	}
	if got := h.Count(testkit.AppWindows); got != 0 {
		t.Fatalf("count %d after 5 failed writes, want 0", got)
	}
	l.Close()
	l, err = ledger.Open(dir, ledger.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h2, err := New(Config{Groups: []string{"windows-server-2025"}, Clock: clock.Now}, catalog.Default(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := h2.Count(testkit.AppWindows); got != 0 {
		t.Fatalf("count %d after restart, want 0", got)
	}
}

// TestFailedBatchNeverCountedInALaterAnswer: a batch of new clients fails
// to reach the log (the fault hook fails its append, as a full disk fails
// a write that needs the segment to grow), while a client counted after
// them waits in the queue; its smaller batch is written. The answer it
// gets must count only clients the log holds: the count after a restart.
func TestFailedBatchNeverCountedInALaterAnswer(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	var armed, calls atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	fault := func(off int64, n int, alloc int64) error {
		if armed.Load() == 0 {
			return nil
		}
		switch calls.Add(1) {
		case 1: // client 0's batch: hold the writer while the queue fills
			close(entered)
			<-release
		case 2: // the five new clients' batch
			return errors.New("injected: no space left on device")
		}
		return nil
	}
	const maxBatch = 5
	l, err := ledger.Open(dir, ledger.Options{Clock: clock.Now, MaxBatch: maxBatch, WriteFault: fault})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Groups: []string{"windows-server-2025"}, Clock: clock.Now}
	h, err := New(cfg, catalog.Default(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := func(i int) Input {
		return Input{App: testkit.AppWindows, CountedID: testkit.KMSWin10, CMID: testkit.CMID(i), NPolicy: 25, ClientTime: clock.Now(), Peer: netip.MustParseAddrPort("127.0.0.1:1")}
	}
	type answer struct {
		client, count int
		err           error
	}
	answers := make(chan answer, 8)
	activate := func(i int) {
		res, err := h.Activate(context.Background(), in(i))
		answers <- answer{i, res.CurrentCount, err}
	}
	waitCount := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); h.Count(testkit.AppWindows) != n; {
			if time.Now().After(deadline) {
				t.Fatalf("memory count %d, want %d", h.Count(testkit.AppWindows), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	armed.Store(1)
	go activate(0)
	<-entered
	for i := 1; i <= maxBatch; i++ {
		go activate(i)
	}
	waitCount(1 + maxBatch) // clients 1-5 counted and queued: the queue is full
	go activate(100)        // counted with clients 1-5 in memory; waits for room in the queue
	waitCount(2 + maxBatch)
	close(release)
	told := map[int]int{}
	for range 2 + maxBatch {
		a := <-answers
		if a.err == nil {
			told[a.client] = a.count
		}
	}
	for i := 1; i <= maxBatch; i++ {
		if _, ok := told[i]; ok {
			t.Fatalf("client %d was answered although its batch failed", i)
		}
	}
	if _, ok := told[100]; !ok {
		t.Fatal("client 100, whose own batch was written, was not answered")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = ledger.Open(dir, ledger.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h2, err := New(cfg, catalog.Default(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	held := h2.Count(testkit.AppWindows)
	if held != 2 {
		t.Fatalf("ledger holds count %d after restart, want 2 (clients 0 and 100)", held)
	}
	for client, count := range told {
		if count > held {
			t.Errorf("client %d was told count %d, but the ledger holds %d", client, count, held)
		}
	}
}

func TestParseHwID(t *testing.T) {
	tests := []struct {
		in      string
		want    [8]byte
		wantErr bool
	}{
		{"0011223344556677", [8]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}, false},
		{" 0x3A1C049600B60076 ", [8]byte{0x3a, 0x1c, 0x04, 0x96, 0x00, 0xb6, 0x00, 0x76}, false},
		{"xyz", [8]byte{}, true},
		{"00112233", [8]byte{}, true},
		{"001122334455667788", [8]byte{}, true},
		{"", [8]byte{}, true},
	}
	for _, tt := range tests {
		got, err := ParseHwID(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseHwID(%q) = %X, %v; want %X (error %t)", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "not 16 hex digits") {
			t.Errorf("ParseHwID(%q) error %q does not say what is wanted", tt.in, err)
		}
	}
}

// TestGroupIdentityAndStatistics: with several groups, each answer carries
// the ePID of the group that served it, and the status counts requests
// under that group's name only (refusals under none).
func TestGroupIdentityAndStatistics(t *testing.T) {
	f := newFixture(t, "windows-server-2019", "office-2016")
	epids := f.host.EPIDs()
	if epids["windows-server-2019"] == epids["office-2016"] {
		t.Fatalf("two groups share the ePID %q", epids["office-2016"])
	}
	for i, tc := range []struct {
		app, counted guid.GUID
		group        string
	}{
		{testkit.AppWindows, testkit.KMSWin10, "windows-server-2019"},
		{testkit.AppOffice, idOffice16, "office-2016"},
		{testkit.AppOffice, idOffice16, "office-2016"},
		{testkit.AppOffice, idOffice19, ""},
	} {
		res := f.activate(f.request(i, tc.app, tc.counted))
		if res.Group != tc.group || res.EPID != epids[tc.group] {
			t.Errorf("request %d: group %q ePID %q, want %q %q", i, res.Group, res.EPID, tc.group, epids[tc.group])
		}
	}
	st := f.host.Status()
	want := map[string]uint64{"windows-server-2019": 1, "office-2016": 2}
	if fmt.Sprint(st.RequestsByGroup) != fmt.Sprint(want) {
		t.Errorf("requests by group %v, want %v", st.RequestsByGroup, want)
	}
}
