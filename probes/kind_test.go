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
