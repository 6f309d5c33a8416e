// Command soakcheck is the client half of `make soak` (build/soak.sh):
//
//	soakcheck load --server ADDR --out FILE [--connections N] [--product NAME]
//	soakcheck verify --data DIR --answered FILE
//
// load activates fresh client machine IDs over N persistent connections
// until SIGINT or SIGTERM, reconnecting whenever the host goes away, and
// appends the client machine ID and application ID of every activation the
// host answered to FILE. verify opens the ledger in DIR (the responder must
// be stopped) and checks that every activation listed in FILE is recorded
// there; it prints the figures and exits 1 if any is missing.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: soakcheck load|verify [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "load":
		err = load(os.Args[2:])
	case "verify":
		err = verify(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want load or verify)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakcheck:", err)
		os.Exit(1)
	}
}

// answeredLog appends answered activations to a file, one
// "CMID APPID" line each, flushed at least every 50 ms and on close.
type answeredLog struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
	n  int64
}

func (l *answeredLog) add(cmid, app guid.GUID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s\n", cmid, app)
	l.n++
}

func (l *answeredLog) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Flush()
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	server := fs.String("server", "", "KMS host HOST:PORT")
	out := fs.String("out", "", "file the answered activations are appended to")
	conns := fs.Int("connections", 8, "concurrent client connections")
	name := fs.String("product", "Windows Server 2025 Standard", "edition from the catalog")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *server == "" || *out == "" || *conns < 1 {
		return errors.New("load needs --server, --out and --connections >= 1")
	}
	e, ok := catalog.Default().Edition(*name)
	if !ok {
		return fmt.Errorf("edition %q is not in the catalog", *name)
	}
	p := kmsclient.Product{Name: e.Name, AppID: e.AppID, KMSID: e.CountedID, SKUID: e.SKUID, Protocol: e.Protocol, Threshold: 5}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	log := &answeredLog{f: f, w: bufio.NewWriterSize(f, 1<<16)}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var failed, reconnects atomic.Int64
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client(ctx, *server, p, log, &failed, &reconnects)
		}()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		if err := log.flush(); err != nil {
			return err
		}
	}
	wg.Wait()
	if err := log.flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("load: %d activations answered, %d requests unanswered, %d reconnects\n", log.n, failed.Load(), reconnects.Load())
	return nil
}

// client activates over one connection at a time until ctx ends. An
// activation counts as answered only when the response verified and
// reported success.
func client(ctx context.Context, server string, p kmsclient.Product, log *answeredLog, failed, reconnects *atomic.Int64) {
	for ctx.Err() == nil {
		c, err := dcerpc.Dial(ctx, "tcp", server, dcerpc.ClientConfig{Timeout: 2 * time.Second})
		if err != nil {
			reconnects.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		for ctx.Err() == nil {
			cmid := kmsclient.RandomCMID()
			out, err := kmsclient.Activate(ctx, c, kmsclient.NewRequest(p, p.Protocol, cmid, "soak", time.Now()), rand.Reader)
			if err != nil || out.Status != kms.OK {
				failed.Add(1)
				break
			}
			log.add(cmid, p.AppID)
		}
		c.Close()
		reconnects.Add(1)
	}
}

func verify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	data := fs.String("data", "", "the responder's data directory (the responder must be stopped)")
	answered := fs.String("answered", "", "file written by soakcheck load")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *answered == "" {
		return errors.New("verify needs --data and --answered")
	}
	f, err := os.Open(*answered)
	if err != nil {
		return err
	}
	defer f.Close()
	l, err := ledger.Open(*data, ledger.Options{})
	if err != nil {
		return fmt.Errorf("the ledger does not open cleanly: %w", err)
	}
	defer l.Close()
	var total, lost int
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			// The last line may be torn if load is still writing.
			continue
		}
		cmid, err1 := guid.Parse(fields[0])
		app, err2 := guid.Parse(fields[1])
		if err1 != nil || err2 != nil {
			continue
		}
		total++
		if _, ok, err := l.Client(cmid, app); err != nil {
			return fmt.Errorf("%s line %d: ledger lookup: %w", *answered, line, err)
		} else if !ok {
			lost++
			if lost <= 10 {
				fmt.Fprintf(os.Stderr, "soakcheck: answered activation %s (app %s) is not in the ledger\n", cmid, app)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Printf("verify: %d answered activations checked, %d in the ledger, %d lost\n", total, total-lost, lost)
	if lost > 0 {
		return fmt.Errorf("%d answered activations lost", lost)
	}
	return nil
}
