package web

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// stepStates are the probing page's plain steps' states, in order.
var stepStateRE = regexp.MustCompile(`<li data-kinds="[^"]*" data-state="([a-z]+)"`)

func stepStates(page string) string {
	var out []string
	for _, m := range stepStateRE.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return strings.Join(out, ",")
}

// TestProbingPageWords: the probing page says where a check stands in
// words (the queue ahead of it, how long checks usually take, measured
// once there are three) and draws its steps without JavaScript: all
// waiting in the queue; the lookup and the connection done while the
// request is held.
func TestProbingPageWords(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	quick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer quick.Close()
	a := newApp(t, func(c *Config) { c.ProbeWorkers, c.ProbeQueue, c.ReuseWindow = 1, 10, -1 })

	// Before three checks are measured, the page gives the prober's bound.
	first := a.createCase(slow.URL+"/0", "")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, page := a.do("GET", "/c/"+first, nil); stepStates(page) == "done,done,running,running" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, page := a.do("GET", "/c/"+first, nil)
	if got := stepStates(page); got != "done,done,running,running" {
		t.Errorf("the held check's steps: %s", got)
	}
	if !strings.Contains(page, "A check usually takes a few seconds, and never more than 3 seconds.") {
		t.Errorf("no bound from the prober's settings: %s", excerpt(page, "data-usually"))
	}
	if !strings.Contains(page, `<progress data-progress max="4" value="2"`) {
		t.Errorf("the bar: %s", excerpt(page, "data-progress"))
	}
	for i, want := range []string{"you are next.", "1 check is ahead of yours.", "2 checks are ahead of yours."} {
		token := a.createCase(slow.URL+"/"+string(rune('a'+i)), "")
		_, page := a.do("GET", "/c/"+token, nil)
		if !strings.Contains(page, want) {
			t.Errorf("queued %d: %s", i+1, excerpt(page, "data-queue"))
		}
		if got := stepStates(page); got != "waiting,waiting,waiting,waiting" {
			t.Errorf("queued %d: steps %s", i+1, got)
		}
	}
	close(release)
	for range 3 {
		a.waitProbed(a.createCase(quick.URL+"/", ""))
	}
	// Three or more measured: their median, in words.
	block := make(chan struct{})
	defer close(block)
	slow2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer slow2.Close()
	last := a.createCase(slow2.URL+"/", "")
	_, page = a.do("GET", "/c/"+last, nil)
	if !strings.Contains(page, "A check usually takes about ") {
		t.Errorf("no measured duration: %s", excerpt(page, "data-usually"))
	}
}

// TestSecondsWords says waits as people do.
func TestSecondsWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Millisecond: "1 second", time.Second: "1 second", 20 * time.Second: "20 seconds",
		19500 * time.Millisecond: "20 seconds", time.Minute: "1 minute", 65 * time.Second: "1 minute 5 seconds",
		90 * time.Second: "1 minute 30 seconds", 2 * time.Minute: "2 minutes",
	} {
		if got := secondsWords(d); got != want {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
	}
}
