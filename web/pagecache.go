package web

import (
	"context"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// pageCache keeps rendered wizard step pages. A case link sits in a ticket
// and is opened again and again (the visitor, the helpdesk, a refresh after
// each try) while the case does not change; serving those from memory
// costs no query and no rendering.
//
// Correctness rests on one rule: the store tells the server of every
// write it commits (wizard.ChangeNotifier; Server.changed numbers the
// write and notes it against its cases). A page is kept, and served, only
// while no write to its case is numbered after the moment its reading
// began. When other instances write the store too (Shared), their writes
// are not heard here: a page also carries the case's version as read,
// and is served only while the store still says that version (one
// indexed read instead of building the page). A page also lapses at the
// end of the minute it was rendered in, because an escalation summary
// shows the time to the minute.
type pageCache struct {
	now      func() time.Time
	maxBytes int

	mu        sync.Mutex
	seq       uint64           // writes so far
	allSince  uint64           // the last write that counts for every case
	lastWrite map[int64]uint64 // case ID -> its last write
	pages     map[string]*cachedPage
	bytes     int
}

type cachedPage struct {
	caseID  int64
	version int64  // the case's version as read (wizard.Case.Version)
	from    uint64 // the write count when reading the case began
	until   time.Time
	body    []byte
	csp     string // the page's own Content-Security-Policy, if any
}

// maxTracked bounds lastWrite; past it, every page is dropped instead.
const maxTracked = 1 << 16

func newPageCache(now func() time.Time, maxBytes int) *pageCache {
	return &pageCache{now: now, maxBytes: maxBytes, lastWrite: map[int64]uint64{}, pages: map[string]*cachedPage{}}
}

// begin is called before reading a case whose page may be kept.
func (pc *pageCache) begin() uint64 {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.seq
}

func (pc *pageCache) currentLocked(caseID int64, from uint64) bool {
	return pc.allSince <= from && pc.lastWrite[caseID] <= from
}

// get returns the page kept under key, if no write heard here makes it
// stale and its minute has not passed (the caller checks its version
// when other instances write too).
func (pc *pageCache) get(key string) (p *cachedPage, ok bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	p = pc.pages[key]
	if p == nil {
		return nil, false
	}
	if !pc.currentLocked(p.caseID, p.from) || !pc.now().Before(p.until) {
		pc.dropLocked(key, p)
		return nil, false
	}
	return p, true
}

// drop forgets the page kept under key, if it is still p (another
// instance changed its case).
func (pc *pageCache) drop(key string, p *cachedPage) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.pages[key] == p {
		pc.dropLocked(key, p)
	}
}

// put keeps a page of a case read, at version, after begin returned
// from, unless the case was written since, until the time given, with the
// Content-Security-Policy it must be sent with (empty: the default one).
func (pc *pageCache) put(key string, caseID, version int64, from uint64, until time.Time, body []byte, csp string) {
	if len(body) > pc.maxBytes/8 {
		return
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if !pc.currentLocked(caseID, from) {
		return
	}
	if old := pc.pages[key]; old != nil {
		pc.dropLocked(key, old)
	}
	for k, p := range pc.pages {
		if pc.bytes+len(body) <= pc.maxBytes {
			break
		}
		pc.dropLocked(k, p)
	}
	pc.pages[key] = &cachedPage{caseID: caseID, version: version, from: from, body: body, until: until, csp: csp}
	pc.bytes += len(body)
}

func (pc *pageCache) dropLocked(key string, p *cachedPage) {
	delete(pc.pages, key)
	pc.bytes -= len(p.body)
}

// written notes a finished write to a case; caseID 0 means every case.
func (pc *pageCache) written(caseID int64) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.seq++
	if caseID == 0 || len(pc.lastWrite) >= maxTracked {
		pc.allSince = pc.seq
		clear(pc.lastWrite)
		return
	}
	pc.lastWrite[caseID] = pc.seq
}

// writtenEach notes a finished write to each of the cases.
func (pc *pageCache) writtenEach(caseIDs []int64) {
	for _, id := range caseIDs {
		pc.written(id)
	}
}

// changed is the store's change hook: the pages of the cases a write
// changed are stale (of every case, for a notice); agents waiting for the
// verdict of a probe run that finished are told.
func (s *Server) changed(ch wizard.Change) {
	if ch.All {
		s.pages.written(0)
	} else {
		s.pages.writtenEach(ch.Cases)
	}
	if len(ch.Finished) > 0 && s.agents != nil {
		s.runsDone(context.Background(), ch.Finished)
	}
}
