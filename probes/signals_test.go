package probes

import (
	"path/filepath"
	"strings"
	"testing"
)

// productOfPage is the product a captured page in testdata/gateways is of:
// the longest product name its file name begins with (envoy-istio_503 is
// Envoy's, pound2_503 Pound's).
func productOfPage(file string) string {
	base, _, _ := strings.Cut(strings.TrimSuffix(filepath.Base(file), ".http"), "_")
	best := ""
	for _, n := range GatewayNames {
		if strings.HasPrefix(base, n) && len(n) > len(best) {
			best = n
		}
	}
	return best
}

// TestEverySignalHasACapturedPage: every signal of every product in the
// gateway table is triggered by at least one captured page of that
// product, so that no signal goes untested (one that matches nothing real
// is dead weight, or a bug: Fastly's "Details: cache-…" matched no real
// Guru Mediation page, whose cache names end in the POP in capitals).
func TestEverySignalHasACapturedPage(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "gateways", "*.http"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captured pages: %v", err)
	}
	pages := map[string][]gatewayPage{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".http")
		product := productOfPage(f)
		if product == "" {
			t.Errorf("%s: its name does not begin with a product's (NAME_STATUS.http or NAME-VARIANT_STATUS.http)", f)
			continue
		}
		pages[product] = append(pages[product], loadPage(t, name))
	}
	signals := 0
	for _, g := range gateways {
		for i, s := range g.Signals {
			signals++
			triggered := false
			for _, p := range pages[g.Name] {
				if _, ok := s.match(p.header, p.body); ok {
					triggered = true
					break
				}
			}
			if !triggered {
				kind := "relayed"
				if s.page {
					kind = "authored"
				}
				t.Errorf("%s's signal %d (%s, weight %.2f) is triggered by none of its %d captured pages: add a real one to testdata/gateways (with its source in the README there) or drop the signal",
					g.Name, i, kind, s.weight, len(pages[g.Name]))
			}
		}
	}
	if signals < 100 {
		t.Errorf("only %d signals in the table", signals)
	}
}
