package wizard

import (
	"context"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// CaseStore keeps cases and everything that happens to them. The web
// layer uses it; wizard/sqlite implements it.
type CaseStore interface {
	CreateCase(ctx context.Context, c *Case, treeSource []byte) error
	Case(ctx context.Context, token string) (*Case, error)
	CaseByID(ctx context.Context, id int64) (*Case, error)
	FindCases(ctx context.Context, f CaseFilter) ([]*Case, int, error)
	TreeSource(ctx context.Context, version string) ([]byte, error)

	AppendSteps(ctx context.Context, caseID int64, recs []StepRecord) error
	Steps(ctx context.Context, caseID int64) ([]StepRecord, error)
	SetStatus(ctx context.Context, caseID int64, to Status, actor string) error
	StatusChanges(ctx context.Context, caseID int64) ([]StatusChange, error)
	AddNote(ctx context.Context, caseID int64, author, body string) (*Note, error)
	// AddReply adds a note meant for the visitor (Public), shown on the
	// case's page.
	AddReply(ctx context.Context, caseID int64, author, body string) (*Note, error)
	Notes(ctx context.Context, caseID int64) ([]Note, error)

	QueueProbe(ctx context.Context, caseID int64, actor string) (*ProbeRun, error)
	StartProbe(ctx context.Context, runIDs ...int64) error
	// FinishProbe stores the report of run runID; the runs of sharers
	// (reports that joined the same probe) finish with it.
	FinishProbe(ctx context.Context, runID int64, rep *probes.Report, sharers ...int64) error
	// ShareProbe finishes runs with the report of the finished run from.
	ShareProbe(ctx context.Context, from int64, runIDs ...int64) error
	ProbeRuns(ctx context.Context, caseID int64) ([]*ProbeRun, error)
	// InterruptedProbes returns the runs a stopped server left unfinished
	// (run ID -> case ID), queueing first a run for any case without one.
	InterruptedProbes(ctx context.Context) (map[int64]int64, error)

	// AddVantage stores a view of the case's URL from v.From, made for its
	// probe run v.RunID, setting v.ID and v.At. It is refused with
	// ECONFLICT when the run is not the case's latest or that source's
	// view of the run is stored already, and ENOTFOUND when the case has
	// no such run.
	AddVantage(ctx context.Context, caseID int64, v *Vantage) error
	// ClaimReporter makes the browser whose secret hashes to hash the
	// case's reporter, when it has none; claimed is false when another
	// browser already is.
	ClaimReporter(ctx context.Context, caseID int64, hash string) (claimed bool, err error)
	// SetVisitorEmail keeps addr (checked by the caller; empty: none) as
	// the address the visitor wants the helpdesk's replies at.
	SetVisitorEmail(ctx context.Context, caseID int64, addr string) error
	// SetCaseOrigin keeps origin (checked by the caller with
	// probes.ParseOrigin; empty: none) as the address staff asked the
	// case's host to be reached at directly. ENOTFOUND: no such case.
	SetCaseOrigin(ctx context.Context, caseID int64, origin string) error
	// Vantages returns a case's views besides the server's, oldest first.
	Vantages(ctx context.Context, caseID int64) ([]Vantage, error)

	UserByName(ctx context.Context, name string) (*User, error)
	CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, error)
	SessionUser(ctx context.Context, token string) (*User, error)
	DeleteSession(ctx context.Context, token string) error

	// Incidents groups the cases f selects by host and verdict, most
	// reports first, keeping groups of at least f.MinReports; the count is
	// of the cases f selects that have no verdict yet (still being checked).
	Incidents(ctx context.Context, f IncidentFilter) ([]*Incident, int, error)
	// Incident returns one group whatever its size, with its cases newest
	// first.
	Incident(ctx context.Context, host, verdict string, f IncidentFilter) (*Incident, []*Case, error)
	// AddNotes and SetStatuses change many cases in one transaction, each
	// case getting its own note or status change; they return how many
	// cases changed.
	AddNotes(ctx context.Context, caseIDs []int64, author, body string) (int, error)
	SetStatuses(ctx context.Context, caseIDs []int64, to Status, actor string) (int, error)
	// PublishNotice makes n the active notice of its host, replacing any.
	PublishNotice(ctx context.Context, n *Notice) error
	ClearNotice(ctx context.Context, host, actor string) error
	// ActiveNotice returns the host's active notice, or nil.
	ActiveNotice(ctx context.Context, host string) (*Notice, error)
	ActiveNotices(ctx context.Context) ([]*Notice, error)
	// CountReports counts the cases of host opened since then, but one.
	CountReports(ctx context.Context, host string, since time.Time, exceptCaseID int64) (int, error)

	// Watch schedules checks of a case's site, the first at next, none
	// after until; Unwatch stops them; WatchChecked records a check queued
	// and when the next is due; ClaimWatches takes the cases due at now
	// for this instance to check (no other instance is given them before
	// lease has passed); ReleaseWatch gives one back, due at due, unless
	// its watch changed since the claim.
	Watch(ctx context.Context, caseID int64, next, until time.Time) error
	Unwatch(ctx context.Context, caseID int64) error
	WatchChecked(ctx context.Context, caseID int64, next time.Time) error
	ClaimWatches(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Case, error)
	ReleaseWatch(ctx context.Context, caseID int64, claimedUntil, due time.Time) error

	Ping(ctx context.Context) error
}

// TokenStore keeps rate limits' token buckets where every instance sharing
// the store sees them, so that a limit holds across instances. A bucket,
// named by its key, holds up to burst tokens and gains perMinute of them
// a minute.
type TokenStore interface {
	// TakeToken takes a token from key's bucket at now; when it has no
	// whole token, ok is false and wait says how long until it has one
	// (a refused take costs nothing). An error is the store's.
	TakeToken(ctx context.Context, key string, perMinute float64, burst int, now time.Time) (ok bool, wait time.Duration, err error)
	// RefundToken gives a token taken back to key's bucket, up to burst.
	RefundToken(ctx context.Context, key string, burst int) error
	// SweepTokens deletes the buckets full again at now (the same as no
	// bucket) and says how many.
	SweepTokens(ctx context.Context, now time.Time) (int64, error)
}

// Change is a write the store committed, as far as pages showing cases
// care: the cases it changed, and the probe runs it finished.
type Change struct {
	// Cases are the cases the write changed, each once.
	Cases []int64
	// All says the write may show on the pages of cases not listed (a
	// notice of a host, shown on each of its cases' pages).
	All bool
	// Finished are the probe runs the write finished (their report
	// stored, their own or one shared).
	Finished []int64
}

// ChangeNotifier tells of the writes to a store, so that what is kept of
// the cases (rendered pages) is dropped when they change.
type ChangeNotifier interface {
	// OnChange has fn called after each write this process commits,
	// in the writing goroutine, in commit order.
	OnChange(fn func(Change))
	// Shared says whether other processes write the store too (several
	// instances on one PostgreSQL database): their writes reach no
	// OnChange here, so what is kept must be checked against CaseVersion
	// before it is served.
	Shared() bool
	// CaseVersion is the case's version, which every write to the case,
	// from any process, increases (ENOTFOUND for no such case). A case
	// read (Case.Version) tells the version its contents are at least as
	// new as.
	CaseVersion(ctx context.Context, caseID int64) (int64, error)
}

// Signals carries short messages between the instances sharing a store:
// every listener of a topic, in every instance, hears what any instance
// sends on it. A signal only wakes; the tables stay the truth. An empty
// payload means "look again": signals may have been missed (a lost
// connection to the database).
type Signals interface {
	// Listen returns a channel of topic's payloads and a function that
	// stops listening.
	Listen(topic string) (<-chan string, func())
	// Notify sends payload to every listener of topic.
	Notify(ctx context.Context, topic, payload string) error
}

// ProbeJobStore shares probe jobs between the instances on one store, so
// that a target is probed once cluster-wide: the instance that claims a
// target's job owns it under a lease it renews, other instances' runs of
// the target join it, and a job whose owner stopped renewing is taken
// over. Runs are named by ID; a job by its target key.
type ProbeJobStore interface {
	// ClaimProbeJob decides how run runID of case caseID gets its
	// diagnosis of target: by reusing the report of a job done at most
	// reuse ago (JobReuse, Leader the run to share), by joining a job
	// another owner holds (JobJoin: the run waits for Leader), or by
	// owning the job (JobOwn: a new one, one whose lease ran out, or the
	// owner's own), with Runs the runs it then holds, runID included.
	ClaimProbeJob(ctx context.Context, target, host string, runID, caseID int64, owner string, now time.Time, lease, reuse time.Duration) (*ProbeJobClaim, error)
	// RenewProbeJobs extends the leases of owner's jobs not yet done.
	RenewProbeJobs(ctx context.Context, owner string, now time.Time, lease time.Duration) error
	// TakeOverProbeJobs takes the jobs whose lease ran out before now for
	// owner, each with the runs it holds.
	TakeOverProbeJobs(ctx context.Context, owner string, now time.Time, lease time.Duration) ([]*ProbeJobClaim, error)
	// HandBackProbeJobs ends the leases of owner's jobs not yet done, for
	// other instances to take over at once.
	HandBackProbeJobs(ctx context.Context, owner string) error
	// ProbeRunDone says whether a run is done.
	ProbeRunDone(ctx context.Context, runID int64) (bool, error)
	// TakeHostStart counts a probe of host starting at now against the
	// cap of perMinute a minute across the instances: 0 when it may
	// start (and is counted), else how long until it may.
	TakeHostStart(ctx context.Context, host string, perMinute int, now time.Time) (time.Duration, error)
}

// ProbeJobTopic is the signal (Signals) of shared probe jobs' progress.
// Its payload is "<leader run> <kind> <data>": kind check (data: the
// check's JSON), queue (data: where the job stands, in words) or done,
// sent by the job's owner (done by the store, when the report is stored);
// or "0 handback" when an instance stopping gave its jobs back.
const ProbeJobTopic = "probe"

// How a run gets its diagnosis (ProbeJobStore.ClaimProbeJob).
const (
	JobOwn   = "own"
	JobJoin  = "join"
	JobReuse = "reuse"
)

// ProbeJobClaim is how a run gets its diagnosis: Kind is JobOwn, JobJoin
// or JobReuse; Leader the run that holds (or will hold) the report;
// Owner the instance probing; for an owned job, Target and Host and the
// Runs it holds (the leader first).
type ProbeJobClaim struct {
	Kind         string
	Target, Host string
	Leader       int64
	Owner        string
	Runs         []JobRun
}

// JobRun is a probe run held by a job, and its case.
type JobRun struct{ RunID, CaseID int64 }
