package web

import (
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/templates"
)

// TestFoldWatch: each series of the watch's checks reads as one line of
// the timeline, with how many, when, and what they found in order;
// anything else between two checks starts a new series.
func TestFoldWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	w := func(m int, code string) templates.TimelineEntry {
		return templates.TimelineEntry{At: at(m), Kind: "watch", Actor: watchActor, Text: code}
	}
	in := []templates.TimelineEntry{
		{At: at(0), Kind: "open", Text: "Case opened"},
		w(2, "gateway_502"), w(7, "gateway_502"), w(20, "gateway_502"),
		{At: at(21), Kind: "note", Text: "Note: on it"},
		w(30, "gateway_502"), w(40, "gateway_502"), w(50, "healthy"),
		{At: at(51), Kind: "note", Text: "Note: back"},
		w(60, "healthy"),
	}
	clock := func(t time.Time) string { return t.Format("15:04") }
	got := foldWatch(in, clock)
	want := []string{
		"Case opened",
		"Checked 3 times by the watch, from 14:02 to 14:20: all gateway_502",
		"Note: on it",
		"Checked 3 times by the watch, from 14:30 to 14:50: gateway_502 ×2, then healthy",
		"Note: back",
		"Checked by the watch: healthy",
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Text != want[i] {
			t.Errorf("line %d: %q, want %q", i, got[i].Text, want[i])
		}
	}
	if !got[1].At.Equal(at(20)) || got[1].Actor != watchActor {
		t.Errorf("a folded series is dated by its last check, by the watch: %+v", got[1])
	}
}
