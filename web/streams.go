package web

import (
	"net/netip"
	"sync"
)

// streamGate bounds the live progress streams (GET /c/{token}/events):
// each holds a connection, a file and two goroutines for as long as a
// probe may take, so one client could otherwise hold thousands. Past a
// bound the stream is refused with a 429, and the page falls back to
// reloading itself.
type streamGate struct {
	mu                      sync.Mutex
	perClient, perCase, all int
	clients                 map[netip.Addr]int
	cases                   map[int64]int
	open                    int
}

func newStreamGate(perClient, perCase, all int) *streamGate {
	return &streamGate{perClient: perClient, perCase: perCase, all: all, clients: map[netip.Addr]int{}, cases: map[int64]int{}}
}

// enter admits a stream of the case for the client (its rate-limit
// bucket), or says which bound it met: "client", "case" or "server".
// release must be called once when an admitted stream ends.
func (g *streamGate) enter(client netip.Addr, caseID int64) (release func(), refused string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.open >= g.all:
		return nil, "server"
	case g.clients[client] >= g.perClient:
		return nil, "client"
	case g.cases[caseID] >= g.perCase:
		return nil, "case"
	}
	g.open++
	g.clients[client]++
	g.cases[caseID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.open--
			if g.clients[client]--; g.clients[client] <= 0 {
				delete(g.clients, client)
			}
			if g.cases[caseID]--; g.cases[caseID] <= 0 {
				delete(g.cases, caseID)
			}
		})
	}, ""
}

// count returns the streams open in all.
func (g *streamGate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}
