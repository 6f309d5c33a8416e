package statusapi

import (
	"strconv"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
)

// Client states in the listing.
const (
	StateCounted = "counted" // in its application's count now
	StateExpired = "expired" // activated, but no longer in the count
	StateRefused = "refused" // last request refused and not in the count
)

// ClientRow is one (client machine ID, application) of GET /clients, and a
// row of `kms-responder clients`. JSON and CSV names are stable.
type ClientRow struct {
	CMID          string    `json:"cmid"`
	Workstation   string    `json:"workstation"`
	Address       string    `json:"address"`
	Source        string    `json:"source"`
	Application   string    `json:"application"`
	ApplicationID string    `json:"application_id"`
	Product       string    `json:"product"`
	CountedID     string    `json:"counted_id"`
	Edition       string    `json:"edition"`
	SKU           string    `json:"sku"`
	FirstRequest  time.Time `json:"first_request"`
	LastRequest   time.Time `json:"last_request"`
	Requests      uint32    `json:"requests"`
	LastResult    string    `json:"last_result"`
	LastResultHex string    `json:"last_result_code"`
	LicenseState  string    `json:"license_state"`
	Protocol      int       `json:"protocol"`
	State         string    `json:"state"`
	LastCounted   time.Time `json:"last_counted,omitzero"`
	CountedUntil  time.Time `json:"counted_until,omitzero"`
	// CMIDConflict is "workstations" or "addresses" when this machine ID
	// was seen from several names or addresses since serve started.
	CMIDConflict string   `json:"cmid_conflict,omitempty"`
	SeenAs       []string `json:"cmid_seen_as,omitempty"`
	SeenFrom     []string `json:"cmid_seen_from,omitempty"`
}

// ClientList is GET /clients's JSON document (format=json). The server
// streams it row by row; Next is the cursor for after= when limit= cut
// the listing short, Error says why a listing ended early.
type ClientList struct {
	Clients []ClientRow `json:"clients"`
	Next    string      `json:"next"`
	Error   string      `json:"error,omitempty"`
}

// ClientCSVHeader names the CSV columns, in ClientRow.CSV order.
var ClientCSVHeader = []string{"cmid", "workstation", "address", "source", "application", "application_id", "product",
	"counted_id", "edition", "sku", "first_request", "last_request", "requests", "last_result", "last_result_code",
	"license_state", "protocol", "state", "last_counted", "counted_until", "cmid_conflict", "cmid_seen_as", "cmid_seen_from"}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// CSV returns the row's cells in ClientCSVHeader order, each neutralized
// for spreadsheets (printable.CSVCell: escaped, ';' written \x3b, and a
// leading = + - @ tab or CR quoted); the lists are joined with ';' after
// each element is neutralized so (printable.CSVList), so no
// ';'-separated part of any cell starts a formula.
func (r *ClientRow) CSV() []string {
	cells := []string{r.CMID, r.Workstation, r.Address, r.Source, r.Application, r.ApplicationID, r.Product,
		r.CountedID, r.Edition, r.SKU, csvTime(r.FirstRequest), csvTime(r.LastRequest), strconv.FormatUint(uint64(r.Requests), 10),
		r.LastResult, r.LastResultHex, r.LicenseState, strconv.Itoa(r.Protocol), r.State, csvTime(r.LastCounted),
		csvTime(r.CountedUntil), r.CMIDConflict}
	for i, c := range cells {
		cells[i] = printable.CSVCell(c)
	}
	return append(cells, printable.CSVList(r.SeenAs), printable.CSVList(r.SeenFrom))
}

// Escape makes every text field of the row printable (printable.Escape),
// for a terminal: a row read from an admin endpoint is that endpoint's text.
func (r *ClientRow) Escape() {
	for _, p := range []*string{&r.CMID, &r.Workstation, &r.Address, &r.Source, &r.Application, &r.ApplicationID,
		&r.Product, &r.CountedID, &r.Edition, &r.SKU, &r.LastResult, &r.LastResultHex, &r.LicenseState, &r.State, &r.CMIDConflict} {
		*p = printable.Escape(*p)
	}
	for _, l := range [][]string{r.SeenAs, r.SeenFrom} {
		for i := range l {
			l[i] = printable.Escape(l[i])
		}
	}
}

// SummaryCount is one line of a per-product or per-network tally.
type SummaryCount struct {
	Name    string `json:"name"`
	Clients int    `json:"clients"`
	Counted int    `json:"counted"`
}

// ClientSummary is what a person wants first about the clients: how many,
// of what, from where, and whether the count is about to shrink.
type ClientSummary struct {
	AsOf    time.Time `json:"as_of"`
	Clients int       `json:"clients"`
	Counted int       `json:"counted"`
	Expired int       `json:"expired"`
	Refused int       `json:"refused"`
	// Products and Networks tally clients per product and per /24 (IPv4)
	// or /64 (IPv6) network; Networks lists the largest ones.
	Products      []SummaryCount `json:"products"`
	Networks      []SummaryCount `json:"networks"`
	NetworksTotal int            `json:"networks_total"`
	// OtherClients counts clients of products or networks beyond the
	// tally's bound.
	OtherClients int `json:"clients_beyond_tally_bounds,omitempty"`
	// OnTimeWindow is the renewal interval plus the activation (retry)
	// interval: an activated client whose last request is younger renews
	// on time; an older one stopped coming.
	OnTimeWindow   string `json:"on_time_window"`
	RenewingOnTime int    `json:"renewing_on_time"`
	StoppedComing  int    `json:"stopped_coming"`
	// StoppedCounted are those that stopped coming but still count;
	// Leaving7d of them leave the count within 7 days; FirstLeaving and
	// LastLeaving bound when.
	StoppedCounted int       `json:"stopped_coming_still_counted"`
	Leaving7d      int       `json:"leaving_count_next_7_days"`
	FirstLeaving   time.Time `json:"first_leaving,omitzero"`
	LastLeaving    time.Time `json:"last_leaving,omitzero"`
	// Conflicts counts rows whose machine ID was seen from several
	// workstation names or addresses.
	Conflicts int `json:"cmid_conflicts"`
}
