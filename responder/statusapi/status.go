// Package statusapi is the wire schema of kms-responder's admin endpoint
// (GET /status, /clients and /clients/summary) and the HTTP client the
// status and clients commands use to read it. Server and client both
// import it, so the versioned schema has one definition.
package statusapi

import "time"

// Report is what GET /status returns, `status --json` prints as is and
// `status` prints for people: what `slmgr /dlv` shows on a KMS host, plus the
// listeners and DNS registration. Its format is named by Schema
// (documented in responder/README).
type Report struct {
	// Schema names this format and its version; a change that removes or
	// renames a field gets a new version.
	Schema             string            `json:"schema"`
	Started            time.Time         `json:"started"`
	Listeners          []string          `json:"listeners"`
	OpenConnections    int               `json:"open_connections"`
	Groups             []Group           `json:"host_key_groups"`
	HwID               string            `json:"hwid"`
	Counts             []Count           `json:"counts"`
	Expiring           []Expiring        `json:"expiring_next_7_days"`
	ActivationInterval int               `json:"activation_interval_minutes"`
	RenewalInterval    int               `json:"renewal_interval_minutes"`
	Requests           map[string]uint64 `json:"requests_by_result"`
	LicenseStates      map[string]uint64 `json:"requests_by_license_state"`
	LastRequest        *time.Time        `json:"last_request,omitempty"`
	Ledger             Ledger            `json:"ledger"`
	Registration       []Registration    `json:"dns_registration"`
}

// Schema names the GET /status format and its version.
const Schema = "kmsdns-status/v1"

// Group is one host key group the host holds and its ePID.
type Group struct {
	Name      string   `json:"name"`
	EPID      string   `json:"epid"`
	Activates []string `json:"activates"`
}

// Count is an application's current count.
type Count struct {
	Application string `json:"application"`
	Count       int    `json:"current_count"`
	Cap         int    `json:"cap"`
	Thresholds  string `json:"thresholds"`
}

// Expiring is how many of an application's counted clients leave
// the count in the next 7 days unless they come back.
type Expiring struct {
	Application string     `json:"application"`
	Count       int        `json:"current_count"`
	Leaving     int        `json:"leaving"`
	First       *time.Time `json:"first_leaves,omitempty"`
}

// Ledger is the durable ledger's state.
type Ledger struct {
	Path      string `json:"path"`
	Healthy   bool   `json:"healthy"`
	Disabled  bool   `json:"disabled,omitempty"` // --ledger=false
	LastError string `json:"last_error,omitempty"`
}

// Registration is the DNS registration in one zone at one server.
type Registration struct {
	Server      string     `json:"server"`
	Zone        string     `json:"zone"`
	Target      string     `json:"target"`
	Registered  bool       `json:"registered"`
	Lease       string     `json:"granted_lease,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Suspended   string     `json:"suspended,omitempty"`
	Repairs     uint64     `json:"repairs,omitempty"` // registrations sent because the server no longer listed this host
	// Refusals counts the server's refusals by reason (its Extended DNS
	// Error's reason code, else the response code).
	Refusals map[string]uint64 `json:"refusals_by_reason,omitempty"`
}
