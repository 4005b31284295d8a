package probes

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
)

// TestChecksHaveKindsInOrder: every check of a report names the probe it
// comes from, and the report lists them in the order of ProbeKinds.
func TestChecksHaveKindsInOrder(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.24.0")
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	p := New(Config{Samples: 2, AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	rep := p.Diagnose(context.Background(), srv.URL)
	last := -1
	var kinds []ProbeKind
	for _, c := range rep.Checks {
		i := slices.Index(ProbeKinds, c.Kind)
		if i < 0 {
			t.Fatalf("check %q has no known kind: %q", c.Name, c.Kind)
		}
		if i < last {
			t.Errorf("check %q (%s) comes after a check of a later kind", c.Name, c.Kind)
		}
		last = i
		kinds = append(kinds, c.Kind)
	}
	for _, want := range []ProbeKind{ProbeURL, ProbeDNS, ProbeTCP, ProbeHTTP, ProbeSamples, ProbeGateway} {
		if !slices.Contains(kinds, want) {
			t.Errorf("no %s check in %v", want, kinds)
		}
	}
}

// TestLegacyChecksGetKinds: reports stored before checks had kinds read
// back with the kind their names say, so that old cases walk as before.
func TestLegacyChecksGetKinds(t *testing.T) {
	for name, want := range map[string]ProbeKind{
		"url": ProbeURL, "dns": ProbeDNS, "guard": ProbeGuard, "tcp 192.0.2.1:443": ProbeTCP, "tcp [2001:db8::1]:80": ProbeTCP,
		"tls": ProbeTLS, "tls (https twin)": ProbeTLS, "http": ProbeHTTP, "https": ProbeHTTP,
		"http (other scheme)": ProbeTwin, "https (other scheme)": ProbeTwin, "samples": ProbeSamples, "gateway": ProbeGateway,
	} {
		var c Check
		if err := json.Unmarshal([]byte(`{"name": "`+name+`", "status": "ok"}`), &c); err != nil {
			t.Fatal(err)
		}
		if c.Kind != want {
			t.Errorf("%q read as kind %q, want %q", name, c.Kind, want)
		}
	}
	var c Check
	json.Unmarshal([]byte(`{"kind": "tcp", "name": "a label"}`), &c)
	if c.Kind != ProbeTCP {
		t.Errorf("a stored kind was replaced: %q", c.Kind)
	}
}

// TestVerdictTable: every code once, each with a layer and an explanation;
// statuses that stand for a verdict map to codes of the table.
func TestVerdictTable(t *testing.T) {
	seen := map[Code]bool{}
	for _, v := range verdicts {
		if seen[v.code] || v.code == "" || v.layer == "" || len(v.explanation) < 40 {
			t.Errorf("verdict %q: duplicate or incomplete (layer %q, explanation %q)", v.code, v.layer, v.explanation)
		}
		seen[v.code] = true
	}
	if len(Codes) != len(verdicts) {
		t.Errorf("Codes has %d codes, the table %d", len(Codes), len(verdicts))
	}
	for status, c := range statusVerdicts {
		if !seen[c] {
			t.Errorf("status %d maps to %q, not a code of the table", status, c)
		}
	}
	for status, want := range map[int]Code{200: Healthy, 404: Healthy, 0: "", 500: ServerError, 599: ServerError, 502: Gateway502, 522: GatewayTimeout, 403: AccessBlocked} {
		if got := statusCode(status); got != want {
			t.Errorf("status %d: %q, want %q", status, got, want)
		}
	}
}
