package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// probeFlags are the flags every command that probes shares.
type probeFlags struct {
	samples  *int
	timeout  *time.Duration
	resolver *string
	allow    stringList
}

func addProbeFlags(fs *flag.FlagSet) *probeFlags {
	def := probes.DefaultConfig()
	pf := &probeFlags{
		samples: fs.Int("samples", def.Samples, "repeated requests on fresh connections, to catch intermittent failures (0 for none)"),
		timeout: fs.Duration("timeout", def.Timeout, "deadline for the whole diagnosis"),
		resolver: fs.String("resolver", os.Getenv("GATECHECK_RESOLVER"), "the recursive DNS resolver to use, as ADDR:PORT (e.g. 9.9.9.9:53 or [2620:fe::fe]:53); "+
			"empty for the system's (GATECHECK_RESOLVER)"),
	}
	fs.Var(&pf.allow, "allow-net", "allow probing this non-public range (CIDR or address; repeatable; also GATECHECK_ALLOW_NETS)")
	return pf
}

// config checks the flags and builds the probes' configuration.
func (pf *probeFlags) config() (probes.Config, error) {
	cfg := probes.DefaultConfig()
	if *pf.samples < 0 || *pf.samples > 50 {
		return cfg, errors.New("--samples must be between 0 and 50")
	}
	if *pf.timeout < time.Second || *pf.timeout > 5*time.Minute {
		return cfg, errors.New("--timeout must be between 1s and 5m")
	}
	nets, err := probes.ParseNets(append([]string{os.Getenv("GATECHECK_ALLOW_NETS")}, pf.allow...)...)
	if err != nil {
		return cfg, fmt.Errorf("--allow-net: %w", err)
	}
	cfg.Samples, cfg.Timeout, cfg.AllowNets = *pf.samples, *pf.timeout, nets
	if cfg.ResolverAddr, err = resolverAddr(*pf.resolver); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// resolverAddr checks a --resolver value: an IP address and a port (53
// when left out). The resolver is the operator's choice, so any address
// is taken, loopback and private ones included; the guard applies to the
// name servers the probes find, not to it.
func resolverAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		s = netip.AddrPortFrom(a, 53).String()
	}
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("--resolver %q: want an IP address and port, such as 9.9.9.9:53 or [2620:fe::fe]:53", s)
	case ap.Port() == 0 || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast():
		return "", fmt.Errorf("--resolver %q: not an address a resolver can listen on", s)
	}
	return ap.String(), nil
}

// parseArgs parses flags that may come before or after the positional
// arguments (people type "diagnose URL --json"). When it returns ok false
// the command should exit with code: 0 after -h, 2 after a bad flag, or
// when the number of positional arguments is not want (-1: any).
func parseArgs(fs *flag.FlagSet, args []string, want int) (positional []string, code int, ok bool) {
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if want >= 0 && len(positional) != want {
		fmt.Fprintf(fs.Output(), "gatecheck %s: expected %d argument(s), got %d\n", fs.Name(), want, len(positional))
		fs.Usage()
		return nil, exitUsage, false
	}
	return positional, 0, true
}

func cmdDiagnose(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("diagnose", stderr, "gatecheck diagnose [--json] [--samples N [--over 1m]] [--timeout 15s] [--resolver ADDR:PORT] [--allow-net CIDR]... [--origin ADDR] URL")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the report")
	over := fs.Duration("over", 0, "spread the samples over this long, for a failure rate (e.g. --samples 50 --over 1m)")
	originFlag := fs.String("origin", "", "reach the origin directly: every connection to the URL's host goes to this IP address (optional :port), Host and SNI unchanged")
	pf := addProbeFlags(fs)
	positional, code, ok := parseArgs(fs, args, 1)
	if !ok {
		return code
	}
	cfg, err := pf.config()
	if err == nil && *over != 0 {
		err = longRun(&cfg, *over)
	}
	var origin netip.AddrPort
	if err == nil && *originFlag != "" {
		if origin, err = probes.ParseOrigin(*originFlag); err != nil {
			err = fmt.Errorf("--origin: %w", err)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck diagnose:", err)
		return exitUsage
	}
	rep := runProbesOn(ctx, cfg, positional[0], origin, !*asJSON, stderr)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "gatecheck diagnose:", err)
			return exitUsage
		}
	} else {
		writeReport(stdout, rep)
		if *over != 0 {
			c := rep.Counts
			fmt.Fprintf(stdout, "\nFailure rate: %d of %d samples failed (%.0f%%) over %s\n", c.Total-c.OK, c.Total, c.FailureRate*100, *over)
		}
	}
	return exitStatus(rep)
}

// longRun spreads cfg's samples evenly over d, the diagnosis deadline
// stretched to cover them, every other one on a kept-alive connection: a
// staff member's longer look at a site that fails now and then.
func longRun(cfg *probes.Config, d time.Duration) error {
	switch {
	case d < 0 || d > 5*time.Minute:
		return errors.New("--over must be between 0 and 5m")
	case cfg.Samples < 2:
		return errors.New("--over needs --samples 2 or more")
	}
	cfg.SampleSpacing = d / time.Duration(cfg.Samples-1)
	cfg.Timeout += d
	cfg.ReuseSamples = true
	return nil
}

// runProbes diagnoses url, showing progress on a terminal.
func runProbes(ctx context.Context, cfg probes.Config, url string, showProgress bool, stderr io.Writer) *probes.Report {
	return runProbesOn(ctx, cfg, url, netip.AddrPort{}, showProgress, stderr)
}

// runProbesOn is runProbes with the URL's host pinned to origin, when it
// is valid.
func runProbesOn(ctx context.Context, cfg probes.Config, url string, origin netip.AddrPort, showProgress bool, stderr io.Writer) *probes.Report {
	var progress func(probes.Check)
	if showProgress && isTerminal(stderr) {
		progress = func(c probes.Check) { fmt.Fprintf(stderr, "\r\033[K  … %s", c.Name) }
	}
	p := probes.New(cfg)
	var rep *probes.Report
	if origin.IsValid() {
		rep = p.RunOrigin(ctx, url, origin, progress)
	} else {
		rep = p.Run(ctx, url, progress)
	}
	if progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	return rep
}

// exitStatus maps a verdict to the command's exit status.
func exitStatus(r *probes.Report) int {
	switch r.Verdict.Code {
	case probes.Healthy:
		return exitOK
	case probes.InvalidURL, probes.BlockedTarget:
		return exitUsage
	}
	return exitProblem
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
