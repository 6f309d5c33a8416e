package inventory

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/admin"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// TestClientsOutlastsAdminTimeouts: a listing that takes longer than the
// admin server's read and write timeouts (shrunk to 30 ms here, 10 s in
// serve) still streams every row: each chunk renews the write deadline.
func TestClientsOutlastsAdminTimeouts(t *testing.T) {
	store := newTestLedger(t)
	const n = 3000
	if err := store.activate(n); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	svc := newTestService(t, store)
	svc.pageSize = 10
	const timeout = 30 * time.Millisecond
	a := startAdmin(t, svc, admin.Options{ReadTimeout: timeout, WriteTimeout: timeout})
	for _, path := range []string{"/clients", "/clients?format=csv", "/clients/summary"} {
		start := time.Now()
		resp, err := http.Get("http://" + a.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v after %v", path, resp.StatusCode, err, took)
		}
		if took < 3*timeout {
			t.Fatalf("%s took %v: too fast to outlast the %v timeouts", path, took, timeout)
		}
		switch path {
		case "/clients":
			var d statusapi.ClientList
			if err := json.Unmarshal(body, &d); err != nil || len(d.Clients) != n || d.Error != "" {
				t.Fatalf("%s: %d rows, err %v %q after %v", path, len(d.Clients), err, d.Error, took)
			}
		case "/clients/summary":
			var s statusapi.ClientSummary
			if err := json.Unmarshal(body, &s); err != nil || s.Clients != n {
				t.Fatalf("%s: %+v %v", path, s, err)
			}
		default:
			if lines := len(splitLines(body)); lines != n+1 {
				t.Fatalf("%s: %d lines", path, lines)
			}
		}
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

// TestScanPaceFollowsActivations: through the real admin server and a
// real ledger, a listing or summary rests busyPace times its chunk's work
// until it has measured a whole window and while the last window holds
// activations at busyRate or more (here: a thousand), and idlePace times
// otherwise.
func TestScanPaceFollowsActivations(t *testing.T) {
	// The shares of a core the README and the operators rely on.
	if busyPace != 11 || idlePace != 2 {
		t.Fatalf("busyPace %d, idlePace %d: the README promises 11 (a twelfth of a core) and 2 (a third)", busyPace, idlePace)
	}
	store := newTestLedger(t)
	if err := store.activate(50); err != nil {
		t.Fatal(err)
	}
	svc := newTestService(t, store)
	svc.pageSize = 10
	// The pace's clock moves only in the rests, by just over a window
	// each: every rest after the first measures the window before it,
	// however long the chunks take on a loaded machine.
	const window = 100 * time.Millisecond
	svc.busyWindow = window
	clock := time.Unix(1e9, 0)
	svc.clock = func() time.Time { return clock }
	type restTaken struct{ work, d time.Duration }
	var rests []restTaken
	var activateErr error
	svc.sleep = func(r *http.Request, work, d time.Duration) bool {
		rests = append(rests, restTaken{work, d})
		// A thousand activations in the third window only.
		if len(rests) == 2 {
			activateErr = store.activate(1000)
		}
		clock = clock.Add(window + 10*time.Millisecond)
		return rest(r, d)
	}
	a := startAdmin(t, svc, admin.Options{})
	// limit=50 keeps each listing to the 50 newest clients, 5 chunks of
	// 10; the summary's first 4 rests are checked.
	for _, path := range []string{"/clients?limit=50", "/clients?format=csv&limit=50", "/clients/summary"} {
		rests = nil
		resp, err := http.Get("http://" + a.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		if activateErr != nil {
			t.Fatal(activateErr)
		}
		// Unmeasured, a quiet window, the thousand, a quiet window.
		want := []int{busyPace, idlePace, busyPace, idlePace}
		if len(rests) < len(want) {
			t.Fatalf("%s: %d rests %v, want at least %d", path, len(rests), rests, len(want))
		}
		for i, pace := range want {
			if r := rests[i]; r.d != max(r.work, 0)*time.Duration(pace) {
				t.Fatalf("%s: rest %d was %v after %v of work, want %d times the work (rests %v)", path, i+1, r.d, r.work, pace, rests)
			}
		}
	}
}

// TestPacer drives the pace rule with a clock and ledger counters of its
// own: busy until a whole second is measured, then by the count over the
// last second, which slides; the backlog at any time.
func TestPacer(t *testing.T) {
	type step struct {
		after   time.Duration // since the previous step
		acked   uint64        // activations acknowledged meanwhile
		pending int
		want    int
	}
	const limit = 131072
	steady := func(every time.Duration, n uint64, times int, want int) []step {
		var out []step
		for range times {
			out = append(out, step{every, n, 0, want})
		}
		return out
	}
	// A quiet second, sampled as a scan of short chunks samples it
	// (unmeasured until its end).
	quiet := append(steady(100*time.Millisecond, 0, 9, busyPace), step{100 * time.Millisecond, 0, 0, idlePace})
	then := func(a []step, b ...[]step) []step {
		out := append([]step(nil), a...)
		for _, x := range b {
			out = append(out, x...)
		}
		return out
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"busy until a whole second is measured", []step{
			{10 * time.Millisecond, 0, 0, busyPace},
			{500 * time.Millisecond, 0, 0, busyPace},
			{500 * time.Millisecond, 0, 0, idlePace},
			{10 * time.Millisecond, 0, 0, idlePace},
		}},
		{"bursts under a thousand a second stay idle", then(quiet,
			steady(30*time.Millisecond, 25, 100, idlePace))}, // 833 a second, 25 at a time
		{"steady 800 a second stays idle", then(quiet,
			steady(100*time.Millisecond, 80, 30, idlePace))},
		{"steady 1200 a second is busy once the last second holds a thousand", then(quiet,
			steady(100*time.Millisecond, 120, 8, idlePace),
			steady(100*time.Millisecond, 120, 20, busyPace))},
		{"a storm is busy at once and idle a second after it ends", then(quiet, []step{
			{40 * time.Millisecond, 1100, 0, busyPace},
			{500 * time.Millisecond, 0, 0, busyPace},
			{400 * time.Millisecond, 0, 0, busyPace},
			{200 * time.Millisecond, 0, 0, idlePace},
		})},
		{"a backlog of half the limit is busy at once", then(quiet, []step{
			{10 * time.Millisecond, 0, limit / 2, busyPace},
			{10 * time.Millisecond, 0, limit/2 - 1, idlePace},
			{time.Second, 0, limit, busyPace},
		})},
		{"a pause between chunks is unmeasured until a second after it", then(quiet, []step{
			{5 * time.Second, 0, 0, busyPace},
			{500 * time.Millisecond, 0, 0, busyPace},
			{500 * time.Millisecond, 0, 0, idlePace},
		})},
		{"a storm that began in a pause is busy at once", then(quiet, []step{
			{9 * time.Second, 5000, 0, busyPace},
			{100 * time.Millisecond, 500, 0, busyPace},
		})},
		{"a quarter-window gap between rests still measures", then(quiet, []step{
			{250 * time.Millisecond, 0, 0, idlePace},
			{250 * time.Millisecond, 0, 0, idlePace},
			{250 * time.Millisecond, 0, 0, idlePace},
			{250 * time.Millisecond, 0, 0, idlePace},
		})},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := time.Unix(1e9, 0)
			var st ledger.Stats
			st.PendingLimit = limit
			p := &pacer{stats: func() ledger.Stats { return st }, now: func() time.Time { return clock }, window: busyWindow}
			p.start()
			for i, s := range c.steps {
				clock = clock.Add(s.after)
				st.Records += s.acked
				st.Pending = s.pending
				if got := p.pace(); got != s.want {
					t.Fatalf("step %d (%+v): pace %d, want %d", i+1, s, got, s.want)
				}
				if len(p.samples) > 22 {
					t.Fatalf("step %d: %d samples kept", i+1, len(p.samples))
				}
			}
		})
	}
}

// TestBusy: the rate rule.
func TestBusy(t *testing.T) {
	for _, c := range []struct {
		n       uint64
		elapsed time.Duration
		want    bool
	}{
		{0, time.Second, false},
		{999, time.Second, false},
		{1000, time.Second, true},
		{1999, 2 * time.Second, false},
		{1, 0, true}, // acknowledged in no measurable time
		{0, 0, false},
		{^uint64(0), time.Second, true},
	} {
		if got := busy(c.n, c.elapsed); got != c.want {
			t.Errorf("busy(%d, %v) = %v, want %v", c.n, c.elapsed, got, c.want)
		}
	}
}
