package monitoring

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// loadDashboard reads build/monitoring/kmsdns-dashboard.json.
func loadDashboard(t testing.TB) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir(t), "kmsdns-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("kmsdns-dashboard.json: %v", err)
	}
	return d
}

// query is one PromQL expression of the dashboard.
type query struct{ panel, expr string }

// labelValuesRE is Grafana's label_values(metric, label) variable query.
var labelValuesRE = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// dashboardQueries lists the dashboard's expressions: every panel target and
// every query variable (label_values(m, l) as the equivalent group by (l) (m)).
func dashboardQueries(t testing.TB) []query {
	t.Helper()
	d := loadDashboard(t)
	var qs []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				qs = append(qs, query{p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: query: %v", v.Name, err)
		}
		m := labelValuesRE.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(metric, label)", v.Name, q.Query)
		}
		qs = append(qs, query{"variable " + v.Name, "group by (" + m[2] + ") (" + m[1] + "{" + m[2] + `!=""})`})
	}
	return qs
}

// TestDashboardStructure checks that the Grafana dashboard parses, uses the
// datasource variable everywhere and no hard-coded job or instance, shows
// state as state timelines (no tables), has the panels the issue lists, and
// that every expression names its metrics (which the end-to-end test checks
// against a scrape of the running binaries).
func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title")
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d: export from a current Grafana (≥ 39)", d.SchemaVersion)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && strings.Contains(string(v.Query), "prometheus") {
			hasDS = true
		}
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %s: datasource must be ${datasource}", v.Name)
		}
	}
	if !hasDS {
		t.Error("no datasource variable of type prometheus")
	}
	ids, titles := map[int]bool{}, map[string]bool{}
	stateTimelines := 0
	var check func([]panel)
	check = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
			}
			ids[p.ID] = true
			if titles[p.Title] {
				t.Errorf("duplicate panel title %q", p.Title)
			}
			titles[p.Title] = true
			if p.GridPos.W < 1 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H < 1 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
			}
			switch p.Type {
			case "row":
				check(p.Panels)
				continue
			case "state-timeline":
				stateTimelines++
			case "timeseries":
			default:
				t.Errorf("panel %q: type %q; use timeseries or state-timeline", p.Title, p.Type)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource must be ${datasource}", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q: no query", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q query %s: datasource must be ${datasource}", p.Title, tg.RefID)
				}
				if regexp.MustCompile(`\b(job|instance)\s*=\s*"`).MatchString(tg.Expr) {
					t.Errorf("panel %q: hard-coded job or instance in %s", p.Title, tg.Expr)
				}
			}
		}
	}
	check(d.Panels)
	if stateTimelines < 3 {
		t.Errorf("%d state timelines; show states as timelines, not numbers", stateTimelines)
	}
	for _, want := range []string{"Pool health per zone", "Pool members by state", "Answers by kind", "Rogue targets scrubbed", "Rogue targets seen",
		"Probe latency", "Requests by result", "Requests by application", "Counts vs thresholds", "Count reached threshold",
		"Request latency", "Ledger size", "Responder state", "Connections"} {
		if !titles[want] {
			t.Errorf("no panel %q", want)
		}
	}
	for _, q := range dashboardQueries(t) {
		sels, err := selectors(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.panel, err)
		} else if len(sels) == 0 {
			t.Errorf("%s: no metric in %q", q.panel, q.expr)
		}
	}
}
