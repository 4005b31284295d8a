package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdDiagnose(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("diagnose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := probes.DefaultConfig()
	asJSON := fs.Bool("json", false, "print one JSON object instead of the report")
	samples := fs.Int("samples", def.Samples, "repeated requests on fresh connections, to catch intermittent failures (0 for none)")
	timeout := fs.Duration("timeout", def.Timeout, "deadline for the whole diagnosis")
	var allow stringList
	fs.Var(&allow, "allow-net", "allow probing this non-public range (CIDR or address; repeatable; also GATECHECK_ALLOW_NETS)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: gatecheck diagnose [--json] [--samples N] [--timeout 15s] [--allow-net CIDR]... URL\n\n")
		fs.PrintDefaults()
	}
	// Accept flags after the URL too: people type "diagnose URL --json".
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fmt.Fprintln(stderr, "gatecheck diagnose: give exactly one URL")
		fs.Usage()
		return exitUsage
	}
	if *samples < 0 || *samples > 50 {
		fmt.Fprintln(stderr, "gatecheck diagnose: --samples must be between 0 and 50")
		return exitUsage
	}
	if *timeout < time.Second || *timeout > 5*time.Minute {
		fmt.Fprintln(stderr, "gatecheck diagnose: --timeout must be between 1s and 5m")
		return exitUsage
	}
	nets, err := probes.ParseNets(append([]string{os.Getenv("GATECHECK_ALLOW_NETS")}, allow...)...)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck diagnose: --allow-net:", err)
		return exitUsage
	}
	cfg := def
	cfg.Samples, cfg.Timeout, cfg.AllowNets = *samples, *timeout, nets
	p := probes.New(cfg)

	var progress func(probes.Check)
	if !*asJSON && isTerminal(stderr) {
		progress = func(c probes.Check) { fmt.Fprintf(stderr, "\r\033[K  … %s", c.Name) }
	}
	rep := p.Run(ctx, positional[0], progress)
	if progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "gatecheck diagnose:", err)
			return exitUsage
		}
	} else {
		writeReport(stdout, rep)
	}
	return exitStatus(rep)
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
