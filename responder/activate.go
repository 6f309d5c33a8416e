package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
)

// clientFlags are the request-shaping flags shared by activate, discover and bench.
type clientFlags struct {
	protocol    int
	product     string
	app, kmsID  string
	sku         string
	cmid        string
	workstation string
	nPolicy     int
	ndr64       bool
	timeout     time.Duration
	jsonOut     bool
	catalogFile string
	cat         *catalog.Catalog // loaded by request
}

func (f *clientFlags) bind(fs *flag.FlagSet) {
	fs.IntVar(&f.protocol, "protocol", 0, "KMS protocol version 4, 5 or 6 (default: the product's)")
	fs.StringVar(&f.product, "product", "", "edition `name` from the catalog (e.g. \"Windows 11 Enterprise\"); see `kms-responder catalog`")
	fs.StringVar(&f.app, "app", "", "application ID `GUID` (with --kms-id and --sku instead of --product)")
	fs.StringVar(&f.kmsID, "kms-id", "", "KMS counted ID `GUID`")
	fs.StringVar(&f.sku, "sku", "", "SKU (activation) ID `GUID`")
	fs.StringVar(&f.cmid, "cmid", "machine", "client machine ID: `machine` (this machine's stable ID, counted once however often it activates), random (a new client each run: adds one to the host's count) or a GUID")
	fs.StringVar(&f.workstation, "workstation", "", "workstation name sent to the host (default: this host's name)")
	fs.IntVar(&f.nPolicy, "n-policy", 0, "required client count to send (default: the product's threshold)")
	fs.BoolVar(&f.ndr64, "ndr64", true, "offer NDR64 at bind time as Windows 8+ clients do")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "deadline for connecting and for each request")
	fs.BoolVar(&f.jsonOut, "json", false, "print the result as JSON")
	fs.StringVar(&f.catalogFile, "catalog-file", "", "catalog overlay `file` that defines products newer than this build")
}

// resolveProduct turns the product flags into the IDs a client sends.
func (f *clientFlags) resolveProduct(cat *catalog.Catalog) (kmsclient.Product, error) {
	var p kmsclient.Product
	switch {
	case f.product != "" && (f.app != "" || f.kmsID != "" || f.sku != ""):
		return p, usagef("give --product or --app/--kms-id/--sku, not both")
	case f.product != "":
		e, ok := cat.Edition(f.product)
		if !ok {
			return p, usagef("unknown product %q: `kms-responder catalog` lists the editions", f.product)
		}
		p = kmsclient.Product{Name: e.Name, AppID: e.AppID, KMSID: e.CountedID, SKUID: e.SKUID, Protocol: e.Protocol}
	case f.app != "" && f.kmsID != "":
		var err error
		if p.AppID, err = guid.Parse(f.app); err != nil {
			return p, usagef("--app: %v", err)
		}
		if p.KMSID, err = guid.Parse(f.kmsID); err != nil {
			return p, usagef("--kms-id: %v", err)
		}
		if f.sku != "" {
			if p.SKUID, err = guid.Parse(f.sku); err != nil {
				return p, usagef("--sku: %v", err)
			}
		}
		p.Name = "custom product"
		if e, ok := cat.EditionBySKU(p.SKUID); ok {
			p.Name = e.Name
		}
		p.Protocol = 6
	default:
		return p, usagef("say what to activate: --product NAME, or --app GUID --kms-id GUID [--sku GUID]")
	}
	if c, ok := cat.CountedID(p.KMSID); ok {
		p.Threshold = uint32(c.Threshold)
		if p.Protocol == 0 {
			p.Protocol = c.Protocol
		}
	}
	if p.Threshold == 0 {
		p.Threshold = 25
	}
	if p.Protocol == 0 {
		p.Protocol = 6
	}
	if f.nPolicy > 0 {
		p.Threshold = uint32(f.nPolicy)
	}
	if f.protocol != 0 {
		if f.protocol < 4 || f.protocol > 6 {
			return p, usagef("--protocol %d: want 4, 5 or 6", f.protocol)
		}
		p.Protocol = f.protocol
	}
	return p, nil
}

// clientMachineID resolves --cmid: this machine's stable ID (the default),
// a random one, or the given GUID; source says which, for the report.
func (f *clientFlags) clientMachineID() (cmid guid.GUID, source string, err error) {
	switch strings.ToLower(f.cmid) {
	case "", "machine":
		cmid, from, err := kmsclient.MachineCMID()
		if err != nil {
			return cmid, "", usagef("--cmid machine: %v", err)
		}
		return cmid, "this machine's, from " + from, nil
	case "random":
		return kmsclient.RandomCMID(), "random (a new client for the host's count)", nil
	}
	if cmid, err = guid.Parse(f.cmid); err != nil {
		return cmid, "", usagef("--cmid: want machine, random or a GUID: %v", err)
	}
	return cmid, "given", nil
}

// newRequest builds the request for p with the flags' CMID and workstation.
func (f *clientFlags) newRequest(p kmsclient.Product) (*kms.Request, string, error) {
	cmid, source, err := f.clientMachineID()
	if err != nil {
		return nil, "", err
	}
	ws := f.workstation
	if ws == "" {
		ws, _ = os.Hostname()
	}
	return kmsclient.NewRequest(p, p.Protocol, cmid, ws, time.Now()), source, nil
}

// activationReport is the printed (and JSON) result of one activation.
type activationReport struct {
	Server             string `json:"server"`
	Product            string `json:"product"`
	Protocol           int    `json:"protocol"`
	TransferSyntax     string `json:"transfer_syntax,omitempty"`
	CMID               string `json:"cmid"`
	CMIDSource         string `json:"cmid_source,omitempty"`
	EPID               string `json:"epid,omitempty"`
	HwID               string `json:"hwid,omitempty"`
	CurrentCount       uint32 `json:"current_count"`
	RequiredCount      uint32 `json:"required_count"`
	ActivationInterval uint32 `json:"activation_interval_minutes,omitempty"`
	RenewalInterval    uint32 `json:"renewal_interval_minutes,omitempty"`
	HostStatus         string `json:"host_status"`
	Verdict            string `json:"verdict"`
	Activated          bool   `json:"activated"`
	// CoveringGroups are the host key groups that activate the product,
	// when the host refused it with 0xC004F042 (its group is not one).
	CoveringGroups []string `json:"groups_that_activate,omitempty"`
	LatencyMicros  int64    `json:"latency_us"`
	Error          string   `json:"error,omitempty"`
}

func newReport(server string, p kmsclient.Product, req *kms.Request, out *kmsclient.Outcome, syntax string) activationReport {
	r := activationReport{
		Server: server, Product: p.Name, Protocol: int(req.MajorVersion), TransferSyntax: syntax,
		CMID: req.ClientMachineID.String(), RequiredCount: req.RequiredClientCount,
		HostStatus: out.Status.Error(), Verdict: verdictText(out.Verdict), Activated: out.Activated(),
		LatencyMicros: out.Latency.Microseconds(),
	}
	if resp := out.Response; resp != nil {
		r.EPID = resp.EPID
		if req.MajorVersion == 6 {
			r.HwID = hex.EncodeToString(resp.HwID[:])
		}
		r.CurrentCount = resp.CurrentCount
		r.ActivationInterval = resp.ActivationInterval
		r.RenewalInterval = resp.RenewalInterval
	}
	return r
}

func verdictText(h kms.HRESULT) string {
	switch h {
	case kms.OK:
		return "activated"
	}
	if m := h.Meaning(); m != "" {
		return "not activated: " + h.Error() + ": " + m
	}
	return "not activated: " + h.Error()
}

func (r activationReport) print(w io.Writer, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return
	}
	if r.Server != "" {
		fmt.Fprintf(w, "KMS host:             %s\n", r.Server)
	}
	if r.TransferSyntax != "" {
		fmt.Fprintf(w, "Product:              %s (protocol V%d, %s)\n", r.Product, r.Protocol, r.TransferSyntax)
	} else {
		fmt.Fprintf(w, "Product:              %s (protocol V%d)\n", r.Product, r.Protocol)
	}
	if r.CMIDSource != "" {
		fmt.Fprintf(w, "Client machine ID:    %s (%s)\n", r.CMID, r.CMIDSource)
	} else {
		fmt.Fprintf(w, "Client machine ID:    %s\n", r.CMID)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "Error:                %s\n", r.Error)
		fmt.Fprintf(w, "Verdict:              %s\n", r.Verdict)
		return
	}
	fmt.Fprintf(w, "Host answer:          %s\n", r.HostStatus)
	if r.EPID != "" {
		fmt.Fprintf(w, "KMS host ePID:        %s\n", r.EPID)
		if r.HwID != "" {
			fmt.Fprintf(w, "KMS host HwId:        %s\n", r.HwID)
		}
		fmt.Fprintf(w, "Current count:        %d (this client needs %d)\n", r.CurrentCount, r.RequiredCount)
		fmt.Fprintf(w, "Activation interval:  %d minutes\n", r.ActivationInterval)
		fmt.Fprintf(w, "Renewal interval:     %d minutes\n", r.RenewalInterval)
	}
	fmt.Fprintf(w, "Verdict:              %s\n", r.Verdict)
	if len(r.CoveringGroups) > 0 {
		fmt.Fprintf(w, "Activated by hosts of: %s\n", strings.Join(r.CoveringGroups, ", "))
	}
}

// noteCoveringGroups fills CoveringGroups when the host refused the product
// as not covered by its host key group (0xC004F042): which groups would.
func (r *activationReport) noteCoveringGroups(cat *catalog.Catalog, p kmsclient.Product, verdict kms.HRESULT) {
	if verdict != kms.ErrKMSIDMismatch || cat == nil {
		return
	}
	for _, g := range cat.GroupsCovering(p.AppID, p.KMSID) {
		r.CoveringGroups = append(r.CoveringGroups, g.Name)
	}
	if len(r.CoveringGroups) == 0 {
		r.Verdict += "; no host key group in the catalog activates it (retail, preview or unknown product)"
	} else {
		r.Verdict += "; a host holding one of the groups below activates it"
	}
}

// exitCodeFor maps a client verdict to activate/discover's exit code.
func exitCodeFor(v kms.HRESULT) int {
	switch v {
	case kms.OK:
		return exitOK
	case kms.ErrNotEnoughCount:
		return exitLowCount
	}
	return exitError
}

func runActivate(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("activate", stderr)
	var f clientFlags
	server := fs.String("server", "", "KMS host `HOST:PORT` (port defaults to 1688)")
	f.bind(fs)
	if help, err := parseFlags(fs, args); help {
		return exitOK, nil
	} else if err != nil {
		return exitUsage, err
	}
	if *server == "" {
		return exitUsage, usagef("--server HOST:PORT is required (or use `discover` to find hosts in DNS)")
	}
	p, req, source, err := f.request()
	if err != nil {
		return exitUsage, err
	}
	addr := withDefaultPort(*server, strconv.Itoa(dcerpc.DefaultPort))
	report, code := activateOnce(ctx, addr, p, req, f)
	if code == exitError {
		report.noteCoveringGroups(f.cat, p, hresultOf(report.HostStatus))
	}
	report.CMIDSource = source
	report.print(stdout, f.jsonOut)
	return code, nil
}

// activateOnce dials addr, activates req, and reports. It never returns an
// error: failures are in the report and the exit code.
func activateOnce(ctx context.Context, addr string, p kmsclient.Product, req *kms.Request, f clientFlags) (activationReport, int) {
	out, syntax, err := f.dialAndActivate(ctx, addr, req)
	if out == nil {
		r := activationReport{Server: addr, Product: p.Name, Protocol: int(req.MajorVersion), CMID: req.ClientMachineID.String(),
			TransferSyntax: syntax, Verdict: verdictText(kms.ErrNoKMSContacted), Error: err.Error()}
		return r, exitError
	}
	return newReport(addr, p, req, out, syntax), exitCodeFor(out.Verdict)
}

// dialAndActivate connects to addr, binds as a Windows client does and sends
// req once. It returns the negotiated transfer syntax ("" when the bind
// failed); the outcome is nil on transport or verification failures.
func (f *clientFlags) dialAndActivate(ctx context.Context, addr string, req *kms.Request) (*kmsclient.Outcome, string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, err := dcerpc.Dial(ctx, "tcp", addr, dcerpc.ClientConfig{DisableNDR64: !f.ndr64, Timeout: f.timeout})
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	out, err := kmsclient.Activate(ctx, c, req, nil)
	return out, c.LastSyntax().String(), err
}

// parseFlags parses args into fs; help is true when -h was asked for (the
// usage is already printed).
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, usageError{err}
	}
	if fs.NArg() > 0 {
		return false, usagef("unexpected argument %q", fs.Arg(0))
	}
	return false, nil
}

// request resolves the product flags and builds the request to send; source
// says where its client machine ID came from.
func (f *clientFlags) request() (p kmsclient.Product, req *kms.Request, source string, err error) {
	cat, err := loadCatalog(f.catalogFile)
	if err != nil {
		return p, nil, "", usageError{err}
	}
	f.cat = cat
	if p, err = f.resolveProduct(cat); err != nil {
		return p, nil, "", err
	}
	req, source, err = f.newRequest(p)
	return p, req, source, err
}

// hresultOf reads back the code of a report's "0xC004F042 (NAME)" text.
func hresultOf(s string) kms.HRESULT {
	var v uint32
	if _, err := fmt.Sscanf(s, "0x%08X", &v); err != nil {
		return 0
	}
	return kms.HRESULT(v)
}
