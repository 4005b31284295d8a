package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/gatecheck/gatecheck/probes"
)

const width = 80

// writeReport prints a report for a terminal of 80 columns: the verdict and
// its explanation first, then the checks, the samples and a timing bar per
// request.
func writeReport(w io.Writer, r *probes.Report) {
	mark := "✗"
	if !r.Problem() {
		mark = "✓"
	}
	fmt.Fprintf(w, "%s %s  [%s · %s layer]\n", mark, r.URL, r.Verdict.Code, r.Verdict.Layer)
	if r.Origin != "" {
		writeWrapped(w, "  ", "Reached directly at the origin "+r.Origin+", not where the name leads.")
	}
	writeWrapped(w, "  ", r.Verdict.Summary)
	fmt.Fprintln(w)
	writeWrapped(w, "  ", r.Verdict.Explanation)
	if len(r.Findings) > 0 {
		fmt.Fprintln(w, "\nAlso found")
		for _, f := range r.Findings {
			writeWrapped(w, "  - ", string(f.Code)+": "+f.Summary)
		}
	}
	if g := r.Gateway; g.Name != "" {
		fmt.Fprintf(w, "\nGateway: %s (%s confidence, %.2f)\n", probes.GatewayLabel(g.Name), g.Certainty, g.Confidence)
		for _, s := range g.Signals {
			writeWrapped(w, "  - ", s)
		}
		if g.Note != "" {
			writeWrapped(w, "  ", g.Note)
		}
	}
	if len(r.Addresses) > 1 {
		fmt.Fprintln(w, "\nAddresses")
		for _, a := range r.Addresses {
			what := fmt.Sprintf("%d", a.Status)
			if a.Status == 0 {
				what = a.Error
			}
			writeWrapped(w, "  - ", fmt.Sprintf("%s (%s): %s, %s", a.Address, a.Family, a.Verdict, what))
		}
	}
	if len(r.Backends) > 0 {
		fmt.Fprintln(w, "\nBackends")
		for _, b := range r.Backends {
			writeWrapped(w, "  - ", fmt.Sprintf("%s (%s): %d ok, %d failed", b.ID, b.Source, b.OK, b.Failed))
		}
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "\nChecks")
		for _, c := range r.Checks {
			head := fmt.Sprintf("  %-4s %-22s", c.Status, truncate(c.Name, 22))
			if c.DurationMS > 0 {
				head += fmt.Sprintf("%7.0f ms  ", c.DurationMS)
			} else {
				head += strings.Repeat(" ", 12)
			}
			writeHanging(w, head, c.Detail)
		}
	}
	if t := r.TLS; t != nil && len(t.Chain) > 0 {
		fmt.Fprintln(w, "\nCertificate chain as presented")
		for i, c := range t.Chain {
			writeWrapped(w, fmt.Sprintf("  %d. ", i), fmt.Sprintf("%s, issued by %s, valid %s to %s",
				c.Subject, c.Issuer, c.NotBefore.Format("2006-01-02"), c.NotAfter.Format("2006-01-02")))
			if len(c.DNSNames)+len(c.IPAddresses) > 0 {
				writeWrapped(w, "     names: ", strings.Join(append(append([]string{}, c.DNSNames...), c.IPAddresses...), ", "))
			}
		}
	}
	if n := r.Counts; n.Total > 0 {
		fmt.Fprintln(w)
		writeWrapped(w, "Samples: ", fmt.Sprintf("%d requests on fresh connections: %d ok, %d gateway errors, %d other errors, %d without an answer",
			n.Total, n.OK, n.Gateway, n.Other, n.Errors))
	}
	for _, t := range r.Timings {
		if t.TotalMS > 0 && t.ConnectMS+t.WaitMS > 0 {
			writeTiming(w, t)
		}
	}
}

// writeTiming draws the phases of one request as bars, like httpstat.
func writeTiming(w io.Writer, t probes.HopTiming) {
	fmt.Fprintf(w, "\nTiming of %s\n", truncate(t.URL, width-10))
	phases := []struct {
		name string
		ms   float64
	}{
		{"DNS lookup", t.DNSMS}, {"TCP connect", t.ConnectMS}, {"TLS handshake", t.TLSMS},
		{"Server wait", t.WaitMS}, {"Transfer", t.TransferMS},
	}
	most := 0.0
	for _, p := range phases {
		most = max(most, p.ms)
	}
	const barWidth = 44
	for _, p := range phases {
		n := 0
		if most > 0 {
			n = int(p.ms / most * barWidth)
		}
		bar := strings.Repeat("█", n)
		if n == 0 && p.ms > 0 {
			bar = "▏"
		}
		fmt.Fprintf(w, "  %-14s %9.1f ms  %s\n", p.name, p.ms, bar)
	}
	fmt.Fprintf(w, "  %-14s %9.1f ms\n", "Total", t.TotalMS)
}

// writeWrapped prints text word-wrapped to the terminal width after prefix.
func writeWrapped(w io.Writer, prefix, text string) {
	indent := strings.Repeat(" ", utf8.RuneCountInString(prefix))
	for i, line := range wrap(text, width-utf8.RuneCountInString(prefix)) {
		if i == 0 {
			fmt.Fprintln(w, prefix+line)
		} else {
			fmt.Fprintln(w, indent+line)
		}
	}
}

// writeHanging prints head then text, wrapped, continuation lines indented
// by a fixed margin so that narrow terminals still read well.
func writeHanging(w io.Writer, head, text string) {
	const margin = 7
	first := width - utf8.RuneCountInString(head)
	lines := wrap(text, first)
	if len(lines) == 0 {
		fmt.Fprintln(w, strings.TrimRight(head, " "))
		return
	}
	fmt.Fprintln(w, head+lines[0])
	rest := strings.Join(lines[1:], " ")
	for _, l := range wrap(rest, width-margin) {
		fmt.Fprintln(w, strings.Repeat(" ", margin)+l)
	}
}

func wrap(text string, n int) []string {
	if n < 20 {
		n = 20
	}
	var lines []string
	var cur []rune
	for _, word := range strings.Fields(text) {
		wr := []rune(word)
		for len(wr) > n { // a word longer than a line: cut it
			if len(cur) > 0 {
				lines, cur = append(lines, string(cur)), nil
			}
			lines, wr = append(lines, string(wr[:n])), wr[n:]
		}
		switch {
		case len(cur) == 0:
			cur = wr
		case len(cur)+1+len(wr) <= n:
			cur = append(append(cur, ' '), wr...)
		default:
			lines, cur = append(lines, string(cur)), wr
		}
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
