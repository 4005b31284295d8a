package web

import (
	"context"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// pageCache keeps rendered wizard step pages. A case link sits in a ticket
// and is opened again and again (the visitor, the helpdesk, a refresh after
// each try) while the case does not change; serving those from memory
// costs no query and no rendering.
//
// Correctness rests on one rule: every write goes through cachingStore,
// which numbers the write once it is done and notes it against its case.
// A page is kept, and served, only while no write to its case is numbered
// after the moment its reading began. A page also lapses at the end of the
// minute it was rendered in, because an escalation summary shows the time
// to the minute.
type pageCache struct {
	now      func() time.Time
	maxBytes int

	mu        sync.Mutex
	seq       uint64           // writes so far
	allSince  uint64           // the last write that counts for every case
	lastWrite map[int64]uint64 // case ID -> its last write
	pages     map[string]*cachedPage
	bytes     int
	runs      map[int64]int64 // probe run ID -> case ID, for runs queued here
}

type cachedPage struct {
	caseID int64
	from   uint64 // the write count when reading the case began
	until  time.Time
	body   []byte
	csp    string // the page's own Content-Security-Policy, if any
}

// maxTracked bounds lastWrite; past it, every page is dropped instead.
const maxTracked = 1 << 16

func newPageCache(now func() time.Time, maxBytes int) *pageCache {
	return &pageCache{now: now, maxBytes: maxBytes, lastWrite: map[int64]uint64{}, pages: map[string]*cachedPage{}, runs: map[int64]int64{}}
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

// get returns the page kept under key and its Content-Security-Policy
// (empty: the default one), if it is still current.
func (pc *pageCache) get(key string) (body []byte, csp string, ok bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	p := pc.pages[key]
	if p == nil {
		return nil, "", false
	}
	if !pc.currentLocked(p.caseID, p.from) || !pc.now().Before(p.until) {
		pc.dropLocked(key, p)
		return nil, "", false
	}
	return p.body, p.csp, true
}

// put keeps a page of a case read after begin returned from, unless the
// case was written since, until the time given, with the
// Content-Security-Policy it must be sent with (empty: the default one).
func (pc *pageCache) put(key string, caseID int64, from uint64, until time.Time, body []byte, csp string) {
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
	pc.pages[key] = &cachedPage{caseID: caseID, from: from, body: body, until: until, csp: csp}
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

// runQueued remembers which case a probe run belongs to.
func (pc *pageCache) runQueued(runID, caseID int64) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.runs[runID] = caseID
}

// runCase returns the case of a run queued here, or 0 (every case) for a
// run queued before this process started; done forgets the run.
func (pc *pageCache) runCase(runID int64, done bool) int64 {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	id := pc.runs[runID]
	if done {
		delete(pc.runs, runID)
	}
	return id
}

// cachingStore is the case store as the server sees it: each write, once
// done, invalidates the pages of the case it touched. Reads pass through
// (embedded); TestCachingStoreCoversEveryWrite keeps the list of writes
// complete.
type cachingStore struct {
	wizard.CaseStore
	pages *pageCache
	// runsDone, when set, is told of the probe runs that finished, once
	// their reports are stored.
	runsDone func(runIDs []int64)
}

func (s cachingStore) CreateCase(ctx context.Context, c *wizard.Case, treeSource []byte) error {
	err := s.CaseStore.CreateCase(ctx, c, treeSource)
	s.pages.written(c.ID)
	return err
}

func (s cachingStore) AppendSteps(ctx context.Context, caseID int64, recs []wizard.StepRecord) error {
	defer s.pages.written(caseID)
	return s.CaseStore.AppendSteps(ctx, caseID, recs)
}

func (s cachingStore) SetStatus(ctx context.Context, caseID int64, to wizard.Status, actor string) error {
	defer s.pages.written(caseID)
	return s.CaseStore.SetStatus(ctx, caseID, to, actor)
}

func (s cachingStore) AddNote(ctx context.Context, caseID int64, author, body string) (*wizard.Note, error) {
	defer s.pages.written(caseID)
	return s.CaseStore.AddNote(ctx, caseID, author, body)
}

func (s cachingStore) AddReply(ctx context.Context, caseID int64, author, body string) (*wizard.Note, error) {
	defer s.pages.written(caseID)
	return s.CaseStore.AddReply(ctx, caseID, author, body)
}

func (s cachingStore) SetVisitorEmail(ctx context.Context, caseID int64, addr string) error {
	defer s.pages.written(caseID)
	return s.CaseStore.SetVisitorEmail(ctx, caseID, addr)
}

func (s cachingStore) SetCaseOrigin(ctx context.Context, caseID int64, origin string) error {
	defer s.pages.written(caseID)
	return s.CaseStore.SetCaseOrigin(ctx, caseID, origin)
}

func (s cachingStore) QueueProbe(ctx context.Context, caseID int64, actor string) (*wizard.ProbeRun, error) {
	defer s.pages.written(caseID)
	run, err := s.CaseStore.QueueProbe(ctx, caseID, actor)
	if err == nil {
		s.pages.runQueued(run.ID, caseID)
	}
	return run, err
}

func (s cachingStore) InterruptedProbes(ctx context.Context) (map[int64]int64, error) {
	defer s.pages.written(0)
	return s.CaseStore.InterruptedProbes(ctx)
}

func (s cachingStore) StartProbe(ctx context.Context, runIDs ...int64) error {
	defer s.runsWritten(runIDs, false)
	return s.CaseStore.StartProbe(ctx, runIDs...)
}

func (s cachingStore) FinishProbe(ctx context.Context, runID int64, rep *probes.Report, sharers ...int64) error {
	runs := append([]int64{runID}, sharers...)
	defer s.runsWritten(runs, true)
	err := s.CaseStore.FinishProbe(ctx, runID, rep, sharers...)
	if err == nil && s.runsDone != nil {
		s.runsDone(runs)
	}
	return err
}

func (s cachingStore) Watch(ctx context.Context, caseID int64, next, until time.Time) error {
	defer s.pages.written(caseID)
	return s.CaseStore.Watch(ctx, caseID, next, until)
}

func (s cachingStore) Unwatch(ctx context.Context, caseID int64) error {
	defer s.pages.written(caseID)
	return s.CaseStore.Unwatch(ctx, caseID)
}

func (s cachingStore) WatchChecked(ctx context.Context, caseID int64, next time.Time) error {
	defer s.pages.written(caseID)
	return s.CaseStore.WatchChecked(ctx, caseID, next)
}

func (s cachingStore) ShareProbe(ctx context.Context, from int64, runIDs ...int64) error {
	defer s.runsWritten(runIDs, true)
	err := s.CaseStore.ShareProbe(ctx, from, runIDs...)
	if err == nil && s.runsDone != nil {
		s.runsDone(runIDs)
	}
	return err
}

func (s cachingStore) ClaimReporter(ctx context.Context, caseID int64, hash string) (bool, error) {
	defer s.pages.written(caseID)
	return s.CaseStore.ClaimReporter(ctx, caseID, hash)
}

func (s cachingStore) AddVantage(ctx context.Context, caseID int64, v *wizard.Vantage) error {
	defer s.pages.written(caseID)
	return s.CaseStore.AddVantage(ctx, caseID, v)
}

// runsWritten notes a write to the cases of runs; done forgets the runs.
func (s cachingStore) runsWritten(runIDs []int64, done bool) {
	for _, id := range runIDs {
		s.pages.written(s.pages.runCase(id, done))
	}
}

func (s cachingStore) AddNotes(ctx context.Context, caseIDs []int64, author, body string) (int, error) {
	defer s.pages.writtenEach(caseIDs)
	return s.CaseStore.AddNotes(ctx, caseIDs, author, body)
}

func (s cachingStore) SetStatuses(ctx context.Context, caseIDs []int64, to wizard.Status, actor string) (int, error) {
	defer s.pages.writtenEach(caseIDs)
	return s.CaseStore.SetStatuses(ctx, caseIDs, to, actor)
}

// A notice shows on the pages of every case of its host: publishing or
// clearing one counts as a write to every case.

func (s cachingStore) PublishNotice(ctx context.Context, n *wizard.Notice) error {
	defer s.pages.written(0)
	return s.CaseStore.PublishNotice(ctx, n)
}

func (s cachingStore) ClearNotice(ctx context.Context, host, actor string) error {
	defer s.pages.written(0)
	return s.CaseStore.ClearNotice(ctx, host, actor)
}

// cachingAgents is the agent store as the server sees it: each write to
// an agent's job, once done, invalidates the pages of the job's case (they
// show where the job stands). Agents themselves are on no case page.
type cachingAgents struct {
	wizard.AgentStore
	pages *pageCache
}

func (s cachingAgents) QueueAgentJobs(ctx context.Context, caseID, runID int64, agentIDs []int64, actor string, internal bool, expires time.Time) ([]*wizard.AgentJob, error) {
	defer s.pages.written(caseID)
	return s.AgentStore.QueueAgentJobs(ctx, caseID, runID, agentIDs, actor, internal, expires)
}

func (s cachingAgents) TakeAgentJob(ctx context.Context, agentID int64, lease time.Duration) (*wizard.AgentJob, error) {
	j, err := s.AgentStore.TakeAgentJob(ctx, agentID, lease)
	if j != nil {
		s.pages.written(j.CaseID)
	}
	return j, err
}

func (s cachingAgents) FinishAgentJob(ctx context.Context, agentID, jobID int64, v *wizard.Vantage) (*wizard.AgentJob, error) {
	j, err := s.AgentStore.FinishAgentJob(ctx, agentID, jobID, v)
	if j != nil {
		s.pages.written(j.CaseID)
	}
	return j, err
}

func (s cachingAgents) SweepAgentJobs(ctx context.Context, maxAttempts int) ([]int64, error) {
	cases, err := s.AgentStore.SweepAgentJobs(ctx, maxAttempts)
	s.pages.writtenEach(cases)
	return cases, err
}
