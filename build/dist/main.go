// Command dist packages kmsdns for release: .deb and .rpm packages (nfpm as a
// library) and OCI image archives (go-containerregistry, no container daemon)
// for kms-responder and coredns-kmsdns, plus SHA256SUMS. build/dist.sh builds
// the binaries and runs it (`make dist`); build/dist-test.sh uses `unpack`.
//
//	dist build  -repo DIR -bin DIR -out DIR [-arch amd64,arm64] [-pkg-version V]
//	dist unpack -image FILE.oci.tar -root DIR
//
// Everything is reproducible: the version, commit and commit time come from
// the environment build/version.sh sets (KMSDNS_VERSION, KMSDNS_COMMIT,
// KMSDNS_DATE, SOURCE_DATE_EPOCH), every timestamp inside an artifact is
// SOURCE_DATE_EPOCH, and nothing depends on the build host.
//
// It is its own Go module so that nfpm's and go-containerregistry's
// dependencies (go-git, sprig, PGP, ...) stay out of the kmsdns module that
// users build and vet.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: dist build|unpack [flags]")
	}
	fs := flag.NewFlagSet("dist "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch args[0] {
	case "build":
		var o buildOptions
		fs.StringVar(&o.repo, "repo", "", "kmsdns repository `dir` (systemd units, corefile.example)")
		fs.StringVar(&o.bin, "bin", "", "`dir` holding linux_ARCH/{kms-responder,coredns-kmsdns}")
		fs.StringVar(&o.out, "out", "", "output `dir`")
		arch := fs.String("arch", "amd64,arm64", "comma-separated GOARCH list")
		fs.StringVar(&o.pkgVersion, "pkg-version", "", "package version instead of the one derived from $KMSDNS_VERSION (tests: an older build to upgrade from)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var err error
		if o.meta, err = metaFromEnv(); err != nil {
			return err
		}
		o.arches = splitList(*arch)
		return build(o, stdout)
	case "unpack":
		image := fs.String("image", "", "OCI image archive (`file`) written by dist build")
		root := fs.String("root", "", "`dir` to unpack the image's filesystem into (created; must not exist)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *image == "" || *root == "" {
			return fmt.Errorf("unpack needs -image and -root")
		}
		return unpack(*image, *root, stdout)
	}
	return fmt.Errorf("unknown command %q (build, unpack)", args[0])
}
