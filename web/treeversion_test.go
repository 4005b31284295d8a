package web

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// TestOldTreeSurvivesANewVerdictCode: a verdict code added after a case's
// tree version was stored leaves the case on its own tree (asking where
// that tree has no answer for the code), and a version that cannot be read
// at all is never switched silently: the pages and the API say so.
func TestOldTreeSurvivesANewVerdictCode(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	old := probes.Codes
	t.Cleanup(func() { probes.Codes = old })
	const added = probes.Code("quic_failed")
	probes.Codes = append(slices.Clone(old), added)

	stored := func(version string, src []byte) string {
		c := &wizard.Case{URL: "https://shop.example/", Host: "shop.example", RequesterIP: "203.0.113.7", TreeVersion: version}
		if err := a.db.CreateCase(ctx, c, src); err != nil {
			t.Fatal(err)
		}
		run, err := a.db.QueueProbe(ctx, c.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		rep := &probes.Report{URL: c.URL, Host: c.Host, Verdict: probes.Verdict{Code: added, Summary: "QUIC failed"}}
		if err := a.db.FinishProbe(ctx, run.ID, rep); err != nil {
			t.Fatal(err)
		}
		return c.Token
	}
	api := func(token string) (doc struct {
		TreeVersion string `json:"tree_version"`
		TreeInUse   string `json:"tree_in_use"`
		Current     struct{ Node, Kind string }
	}) {
		_, body := a.do("GET", "/api/cases/"+token, nil)
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("case %s: %v %s", token, err, body)
		}
		return doc
	}

	// An earlier version of the tree: other wording, written before the
	// code existed.
	src := []byte(strings.Replace(string(wizard.DefaultSource()), "title: Back up before changing anything", "title: Make a backup first", 1))
	earlier, err := wizard.ParseStored("earlier", src)
	if err != nil {
		t.Fatal(err)
	}
	kept := stored(earlier.ID(), src)
	resp, page := a.do("GET", "/c/"+kept, nil)
	if resp.StatusCode != 200 || strings.Contains(page, "can no longer be read") {
		t.Errorf("a case on an older tree with a new code: %d %s", resp.StatusCode, excerpt(page, "<main"))
	}
	if doc := api(kept); doc.TreeVersion != earlier.ID() || doc.TreeInUse != earlier.ID() || doc.Current.Kind != string(wizard.KindCheck) {
		t.Errorf("the case left its tree, or was not asked: %+v", doc)
	}

	lost := stored("2026.09-1+deadbeef0000", []byte("version: [not a tree"))
	if _, page := a.do("GET", "/c/"+lost, nil); !strings.Contains(page, "can no longer be read") {
		t.Errorf("a case whose tree cannot be read switched without a word: %s", excerpt(page, "<main"))
	}
	if doc := api(lost); doc.TreeVersion != "2026.09-1+deadbeef0000" || doc.TreeInUse != wizard.Default().ID() {
		t.Errorf("the API hides the switch: %+v", doc)
	}
}
