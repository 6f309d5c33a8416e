package main

// product is one binary and how it is packaged.
type product struct {
	name        string // package, image and installed binary name
	unit        string // systemd unit from build/systemd/
	summary     string
	description string
	confs       []conf // example configuration under /etc (conffiles)
	confDir     uint32 // mode of the directories holding confs
	docs        []doc  // under /usr/share/doc/<name>/
	config      string // the file an operator edits first, named in messages
	state       string // StateDirectory= of the unit, "" if none
	secrets     []secret
	image       imageSpec
}

// conf is a configuration file shipped as a conffile (deb) /
// %config(noreplace) (rpm): upgrades never overwrite a changed one.
type conf struct {
	dst   string
	src   string // relative to the repository
	mode  uint32
	image string // the image's copy (relative to the repository): "" src, "-" none
}

// secret is a file under /etc that the unit hands the service as a
// credential (LoadCredential=). It is no package file, since its content is
// the site's: the install scripts create it, root's and mode 0600, when it
// is missing (so the unit starts), and purge deletes it.
type secret struct {
	path string
	make string // "empty", "token" (random, hex) or "tsig" (a new kmsdns-key.)
}

// doc is a file installed under /usr/share/doc/<package>/.
type doc struct {
	dst string // relative to /usr/share/doc/<package>/
	src string // relative to the repository
}

// manuals are in both packages, at the paths README.md links them by.
var manuals = []doc{
	{dst: "README.md", src: "README.md"},
	{dst: "plugin/README.md", src: "plugin/README.md"},
	{dst: "responder/README.md", src: "responder/README.md"},
}

// imageSpec is what the OCI image adds to the binary.
type imageSpec struct {
	cmd         []string
	env         []string
	ports       []string
	volumes     []string
	healthcheck []string // Docker HEALTHCHECK test, nil for none (see labels)
	healthDoc   string   // the health check, documented in a label
}

// imageUser is the non-root user both images run as (65532: the "nonroot"
// user of distroless images, so volume ownership is familiar).
const (
	imageUID  = 65532
	imageUser = "kmsdns"
)

func products() []product {
	return []product{
		{
			name:    "kms-responder",
			unit:    "kms-responder.service",
			summary: "KMS host for Windows/Office volume activation that registers itself with CoreDNS vlmcs",
			description: "kms-responder is a KMS host (DCE/RPC, KMS V4/V5/V6, counting like a genuine host,\n" +
				"durable ledger) that registers itself in DNS by RFC 2136 UPDATE + TSIG with the\n" +
				"kmsdns vlmcs CoreDNS plugin. kmsdns grants no licence: run it only for products\n" +
				"your organization is licensed for under volume licensing.",
			// The directory and the config are the service's secrets'
			// neighbours: root's alone (the unit copies the config for
			// the service; see build/systemd/kms-responder.service).
			confs:   []conf{{dst: "/etc/kms-responder/config.yaml", src: "build/dist/files/kms-responder.yaml", mode: 0o600}},
			confDir: 0o700,
			docs:    manuals,
			config:  "/etc/kms-responder/config.yaml",
			secrets: []secret{
				{path: "/etc/kms-responder/tsig.key", make: "empty"}, // the site copies vlmcs.keys here
				{path: "/etc/kms-responder/admin.token", make: "token"},
			},
			state: "kms-responder",
			image: imageSpec{
				cmd:         []string{"serve", "--config", "/etc/kms-responder/config.yaml"},
				ports:       []string{"1688/tcp", "9688/tcp"},
				volumes:     []string{"/var/lib/kms-responder"},
				healthcheck: []string{"CMD", "/usr/bin/kms-responder", "status", "--admin", "127.0.0.1:9688"},
				healthDoc:   "kms-responder status --admin 127.0.0.1:9688 (exit 0 while serve answers); HTTP GET :9688/healthz is 200 while the ledger records",
			},
		},
		{
			name:    "coredns-kmsdns",
			unit:    "coredns-kmsdns.service",
			summary: "CoreDNS with the kmsdns vlmcs plugin: only approved, healthy KMS hosts in _vlmcs._tcp",
			description: "coredns-kmsdns is stock CoreDNS with the kmsdns vlmcs plugin: it answers\n" +
				"_vlmcs._tcp SRV queries from a pool of approved and healthy KMS hosts, takes\n" +
				"their TSIG-signed registrations, and scrubs unapproved KMS hosts from the\n" +
				"answers of the Active Directory DNS behind it.",
			confs: []conf{
				// The package's Corefile is the production template; the
				// image keeps the loopback demo, whose {$VAR}s it sets.
				{dst: "/etc/coredns-kmsdns/Corefile", src: "build/examples/Corefile.resolver", mode: 0o644, image: "corefile.example"},
				{dst: "/etc/coredns-kmsdns/env", src: "build/dist/files/coredns-kmsdns.env", mode: 0o600, image: "-"},
			},
			confDir: 0o755,
			docs: append(append([]doc{}, manuals...),
				doc{dst: "examples/Corefile.resolver", src: "build/examples/Corefile.resolver"},
				doc{dst: "examples/Corefile.delegated", src: "build/examples/Corefile.delegated"},
				doc{dst: "examples/Corefile.scrub-only", src: "build/examples/Corefile.scrub-only"},
				doc{dst: "examples/corefile.example", src: "corefile.example"},
			),
			config:  "/etc/coredns-kmsdns/Corefile and /etc/coredns-kmsdns/env",
			secrets: []secret{{path: "/etc/coredns-kmsdns/vlmcs.keys", make: "tsig"}},
			image: imageSpec{
				cmd: []string{"-conf", "/etc/coredns-kmsdns/Corefile"},
				// corefile.example's variables, for a container: every
				// address, unprivileged ports (publish 53 -> 1053).
				// KMSDNS_AD_DNS and KMSDNS_TSIG_SECRET have no default.
				env: []string{
					"KMSDNS_DNS_ADDR=0.0.0.0",
					"KMSDNS_DNS_PORT=1053",
					"KMSDNS_METRICS_ADDR=:9153",
					"KMSDNS_HEALTH_ADDR=:8080",
					"KMSDNS_READY_ADDR=:8181",
				},
				ports:     []string{"1053/udp", "1053/tcp", "9153/tcp", "8080/tcp", "8181/tcp"},
				healthDoc: "HTTP GET :8080/health (liveness, CoreDNS health plugin) and :8181/ready (readiness: vlmcs finished its first probe round); the image has no shell or HTTP client, so use the orchestrator's HTTP probe",
			},
		},
	}
}
