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
	// Vantages returns a case's views besides the server's, oldest first.
	Vantages(ctx context.Context, caseID int64) ([]Vantage, error)

	UserByName(ctx context.Context, name string) (*User, error)
	CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, error)
	SessionUser(ctx context.Context, token string) (*User, error)
	DeleteSession(ctx context.Context, token string) error

	Ping(ctx context.Context) error
}
