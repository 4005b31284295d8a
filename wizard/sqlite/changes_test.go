package sqlite

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// unnoted are the exported methods of *DB that need not note a case: they
// read, or they write what no case's page shows. Every other method is a
// write of case data and has an entry in caseWrites.
var unnoted = map[string]string{
	// Reads.
	"Case": "read", "CaseByID": "read", "FindCases": "read", "TreeSource": "read", "Steps": "read",
	"StatusChanges": "read", "Notes": "read", "ProbeRuns": "read", "Vantages": "read", "DueWatches": "read",
	"Incidents": "read", "Incident": "read", "ActiveNotice": "read", "ActiveNotices": "read", "CountReports": "read",
	"CaseAgentJobs": "read", "CaseMails": "read", "DueMails": "read", "Agents": "read", "AgentByToken": "read",
	"APIKeys": "read", "APIKeyByToken": "read", "Users": "read", "UserByName": "read", "SessionUser": "read",
	"Webhooks": "read", "DueDeliveries": "read", "Deliveries": "read", "Ping": "read", "IntegrityCheck": "read",
	"Engine": "read", "Shared": "read", "CaseVersion": "read", "Listen": "read",
	// Writes no case's page shows.
	"CreateAgent": "agents show on a case's page through its jobs only", "RevokeAgent": "as CreateAgent",
	"AgentSeen":    "whether an agent is online shows while a job waits, and such pages lapse in 5 s (web/cases.go)",
	"CreateAPIKey": "API keys are on no case's page", "RevokeAPIKey": "as CreateAPIKey", "APIKeyUsed": "as CreateAPIKey",
	"CreateUser": "accounts and sessions are on no case's page", "SetRole": "as CreateUser", "DeleteUser": "as CreateUser",
	"SetPassword": "as CreateUser", "CreateSession": "as CreateUser", "DeleteSession": "as CreateUser",
	"AddWebhook": "webhooks and their deliveries are on no case's page", "SyncFlagWebhooks": "as AddWebhook",
	"DisableWebhook": "as AddWebhook", "Delivered": "as AddWebhook", "DeliveryFailed": "as AddWebhook",
	"TakeToken": "rate limits' buckets", "RefundToken": "as TakeToken", "SweepTokens": "as TakeToken",
	"ClaimMails":      "moves a mail's next try, which only the staff's page shows (built each time, never kept)",
	"ReleaseMail":     "as ClaimMails",
	"ClaimDeliveries": "as AddWebhook", "ReleaseDelivery": "as AddWebhook",
	"ClaimProbeJob":  "writes probe jobs and a run's joined_to, which no page reads; the runs' pages change when they finish (FinishProbe)",
	"RenewProbeJobs": "as ClaimProbeJob", "TakeOverProbeJobs": "as ClaimProbeJob", "HandBackProbeJobs": "as ClaimProbeJob",
	"TakeHostStart": "the per-host cap's counts are on no page",
	"ProbeRunDone":  "read",
	"Backup":        "copies the database", "Close": "closes it", "Notify": "sends a signal", "OnChange": "registers a hook",
}

// A caseWrite prepares one call of a write method and returns it: the
// call makes the write and returns the case it changed.
type caseWrite func(t *testing.T, w *world) func() int64

// world is what the writes are made in.
type world struct {
	ctx    context.Context
	db     *DB
	now    time.Time
	agents int
}

func (w *world) newCase(t *testing.T) *wizard.Case {
	return newCase(t, w.db, "https://shop.example.com/", "")
}

func (w *world) queued(t *testing.T, c *wizard.Case) *wizard.ProbeRun {
	run, err := w.db.QueueProbe(w.ctx, c.ID, "")
	must(t, err)
	return run
}

// job queues an internal agent job (sendable at once) for a new agent.
func (w *world) job(t *testing.T, c *wizard.Case) *wizard.AgentJob {
	w.agents++
	a, _, err := w.db.CreateAgent(w.ctx, fmt.Sprintf("agent-%d", w.agents))
	must(t, err)
	jobs, err := w.db.QueueAgentJobs(w.ctx, c.ID, w.queued(t, c).ID, []int64{a.ID}, "", true, w.now.Add(time.Hour))
	must(t, err)
	return jobs[0]
}

func mail(to string) *wizard.Mail {
	return &wizard.Mail{Kind: wizard.MailReply, To: to, Subject: "Your case", Body: "Fixed."}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var report = &probes.Report{URL: "https://shop.example.com/", Verdict: probes.Verdict{Code: probes.Gateway502}}

// caseWrites calls each write method of case data.
var caseWrites = map[string]caseWrite{
	"CreateCase": func(t *testing.T, w *world) func() int64 {
		return func() int64 { return w.newCase(t).ID }
	},
	"ClaimReporter": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 { _, err := w.db.ClaimReporter(w.ctx, c.ID, "f00d"); must(t, err); return c.ID }
	},
	"SetVisitorEmail": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 { must(t, w.db.SetVisitorEmail(w.ctx, c.ID, "vi@example.com")); return c.ID }
	},
	"SetCaseOrigin": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 { must(t, w.db.SetCaseOrigin(w.ctx, c.ID, "203.0.113.80:443")); return c.ID }
	},
	"AppendSteps": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 {
			must(t, w.db.AppendSteps(w.ctx, c.ID, []wizard.StepRecord{{Index: 0, Node: "role", Choice: "user", Actor: "visitor", At: w.now}}))
			return c.ID
		}
	},
	"SetStatus": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 { must(t, w.db.SetStatus(w.ctx, c.ID, wizard.StatusResolved, "ann")); return c.ID }
	},
	"SetStatusMail": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 {
			_, err := w.db.SetStatusMail(w.ctx, c.ID, wizard.StatusResolved, "ann", mail("vi@example.com"))
			must(t, err)
			return c.ID
		}
	},
	"AddNote": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 { _, err := w.db.AddNote(w.ctx, c.ID, "ann", "Looked."); must(t, err); return c.ID }
	},
	"AddReply": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 { _, err := w.db.AddReply(w.ctx, c.ID, "ann", "On it."); must(t, err); return c.ID }
	},
	"AddReplyMail": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 {
			_, err := w.db.AddReplyMail(w.ctx, c.ID, "ann", "On it.", mail("vi@example.com"))
			must(t, err)
			return c.ID
		}
	},
	"QueueProbe": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 { w.queued(t, c); return c.ID }
	},
	"StartProbe": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		run := w.queued(t, c)
		return func() int64 { must(t, w.db.StartProbe(w.ctx, run.ID)); return c.ID }
	},
	"FinishProbe": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		run := w.queued(t, c)
		return func() int64 { must(t, w.db.FinishProbe(w.ctx, run.ID, report)); return c.ID }
	},
	"ShareProbe": func(t *testing.T, w *world) func() int64 {
		first := w.newCase(t)
		from := w.queued(t, first)
		must(t, w.db.FinishProbe(w.ctx, from.ID, report))
		c := w.newCase(t)
		run := w.queued(t, c)
		return func() int64 { must(t, w.db.ShareProbe(w.ctx, from.ID, run.ID)); return c.ID }
	},
	"InterruptedProbes": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t) // no probe run yet: one is queued
		return func() int64 { _, err := w.db.InterruptedProbes(w.ctx); must(t, err); return c.ID }
	},
	"AddNotes": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 {
			_, err := w.db.AddNotes(w.ctx, []int64{c.ID}, "ann", "All of them.")
			must(t, err)
			return c.ID
		}
	},
	"SetStatuses": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 {
			_, err := w.db.SetStatuses(w.ctx, []int64{c.ID}, wizard.StatusEscalated, "ann")
			must(t, err)
			return c.ID
		}
	},
	"SetStatusesMail": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 {
			_, _, err := w.db.SetStatusesMail(w.ctx, []int64{c.ID}, wizard.StatusResolved, "ann", func(moved []int64) []*wizard.Mail {
				m := mail("vi@example.com")
				m.CaseID = moved[0]
				return []*wizard.Mail{m}
			})
			must(t, err)
			return c.ID
		}
	},
	"PublishNotice": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 {
			must(t, w.db.PublishNotice(w.ctx, &wizard.Notice{Host: c.Host, Verdict: "gateway_502", Body: "We know.", Author: "ann"}))
			return c.ID
		}
	},
	"ClearNotice": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		must(t, w.db.PublishNotice(w.ctx, &wizard.Notice{Host: c.Host, Verdict: "gateway_502", Body: "We know.", Author: "ann"}))
		return func() int64 { must(t, w.db.ClearNotice(w.ctx, c.Host, "ann")); return c.ID }
	},
	"QueueMail": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 {
			m := mail("team@example.com")
			m.Kind = wizard.MailHandoff
			must(t, w.db.QueueMail(w.ctx, c.ID, nil, m))
			return c.ID
		}
	},
	"MailSent": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		m := mail("vi@example.com")
		_, err := w.db.AddReplyMail(w.ctx, c.ID, "ann", "On it.", m)
		must(t, err)
		return func() int64 { must(t, w.db.MailSent(w.ctx, m.ID)); return c.ID }
	},
	"MailFailed": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		m := mail("vi@example.com")
		_, err := w.db.AddReplyMail(w.ctx, c.ID, "ann", "On it.", m)
		must(t, err)
		return func() int64 { must(t, w.db.MailFailed(w.ctx, m.ID, "refused", w.now.Add(time.Minute))); return c.ID }
	},
	"QueueAgentJobs": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 { w.job(t, c); return c.ID }
	},
	"TakeAgentJob": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		j := w.job(t, c)
		return func() int64 { _, err := w.db.TakeAgentJob(w.ctx, j.Agent.ID, time.Minute); must(t, err); return c.ID }
	},
	"FinishAgentJob": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		j := w.job(t, c)
		_, err := w.db.TakeAgentJob(w.ctx, j.Agent.ID, time.Minute)
		must(t, err)
		return func() int64 {
			_, err := w.db.FinishAgentJob(w.ctx, j.Agent.ID, j.ID, &wizard.Vantage{Detail: "seen"})
			must(t, err)
			return c.ID
		}
	},
	"SweepAgentJobs": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		j := w.job(t, c)
		_, err := w.db.TakeAgentJob(w.ctx, j.Agent.ID, -time.Second) // its lease passed
		must(t, err)
		return func() int64 { _, err := w.db.SweepAgentJobs(w.ctx, 3); must(t, err); return c.ID }
	},
	"AddVantage": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		run := w.queued(t, c)
		return func() int64 {
			must(t, w.db.AddVantage(w.ctx, c.ID, &wizard.Vantage{RunID: run.ID, From: wizard.VantageBrowser, Detail: "seen"}))
			return c.ID
		}
	},
	"Watch": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		return func() int64 {
			must(t, w.db.Watch(w.ctx, c.ID, w.now.Add(time.Minute), w.now.Add(time.Hour)))
			return c.ID
		}
	},
	"Unwatch": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		must(t, w.db.Watch(w.ctx, c.ID, w.now.Add(time.Minute), w.now.Add(time.Hour)))
		return func() int64 { must(t, w.db.Unwatch(w.ctx, c.ID)); return c.ID }
	},
	"ClaimWatches": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		must(t, w.db.Watch(w.ctx, c.ID, w.now.Add(-time.Second), w.now.Add(time.Hour))) // due
		return func() int64 {
			claimed, err := w.db.ClaimWatches(w.ctx, w.now, time.Minute, 1000)
			must(t, err)
			if !slices.ContainsFunc(claimed, func(cl *wizard.Case) bool { return cl.ID == c.ID }) {
				t.Errorf("ClaimWatches did not claim the case due")
			}
			return c.ID
		}
	},
	"ReleaseWatch": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		must(t, w.db.Watch(w.ctx, c.ID, w.now.Add(-time.Second), w.now.Add(time.Hour)))
		_, err := w.db.ClaimWatches(w.ctx, w.now, time.Minute, 1000)
		must(t, err)
		return func() int64 { must(t, w.db.ReleaseWatch(w.ctx, c.ID, w.now.Add(time.Minute), w.now)); return c.ID }
	},
	"WatchChecked": func(t *testing.T, w *world) func() int64 {
		c := w.newCase(t)
		must(t, w.db.Watch(w.ctx, c.ID, w.now.Add(time.Minute), w.now.Add(time.Hour)))
		return func() int64 { must(t, w.db.WatchChecked(w.ctx, c.ID, w.now.Add(2*time.Minute))); return c.ID }
	},
}

// TestEveryWriteNotesItsCases walks the exported methods of *DB: each is
// a read (or a write no case's page shows), listed in unnoted with why,
// or a write of case data, which must tell the OnChange hooks of the case
// it changed and increase the case's version. A method added later that
// is in neither list fails here until it is one or the other.
func TestEveryWriteNotesItsCases(t *testing.T) {
	onEngines(t, func(t *testing.T) {
		w := &world{ctx: context.Background(), db: MustOpenDB(t), now: time.Now()}
		var mu sync.Mutex
		var heard []wizard.Change
		w.db.OnChange(func(ch wizard.Change) {
			mu.Lock()
			defer mu.Unlock()
			heard = append(heard, ch)
		})
		typ := reflect.TypeOf(w.db)
		for i := range typ.NumMethod() {
			name := typ.Method(i).Name
			write, isWrite := caseWrites[name]
			if why, ok := unnoted[name]; ok {
				if isWrite {
					t.Errorf("(*DB).%s is in unnoted (%s) and in caseWrites", name, why)
				}
				continue
			}
			if !isWrite {
				t.Errorf("(*DB).%s is neither in unnoted (a read, or a write no case's page shows, with why) nor in caseWrites (a write of case data, which must note its cases: tx.changed)", name)
				continue
			}
			call := write(t, w)
			before := versions(t, w.db)
			mu.Lock()
			heard = nil
			mu.Unlock()
			caseID := call()
			mu.Lock()
			told := slices.ContainsFunc(heard, func(ch wizard.Change) bool { return ch.All || slices.Contains(ch.Cases, caseID) })
			mu.Unlock()
			if !told {
				t.Errorf("(*DB).%s changed case %d and did not tell the OnChange hooks (heard %+v)", name, caseID, heard)
			}
			if after := versions(t, w.db); after[caseID] <= before[caseID] {
				t.Errorf("(*DB).%s changed case %d and left its version at %d", name, caseID, after[caseID])
			}
		}
		for name := range caseWrites {
			if _, ok := typ.MethodByName(name); !ok {
				t.Errorf("caseWrites lists %s, which *DB has not", name)
			}
		}
		for name := range unnoted {
			if _, ok := typ.MethodByName(name); !ok {
				t.Errorf("unnoted lists %s, which *DB has not", name)
			}
		}
	})
}

// versions returns every case's version.
func versions(t *testing.T, db *DB) map[int64]int64 {
	t.Helper()
	rows, err := db.read.QueryContext(context.Background(), `SELECT id, version FROM cases`)
	must(t, err)
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, v int64
		must(t, rows.Scan(&id, &v))
		out[id] = v
	}
	must(t, rows.Err())
	return out
}

// TestChangesAcrossInstances: a write tells this process's hooks which
// cases it changed and which probe runs it finished; another instance on
// the database hears no hook but reads the case's new version (and a
// "case" signal); a write that fails tells nothing and changes no
// version.
func TestChangesAcrossInstances(t *testing.T) {
	onEngines(t, func(t *testing.T) {
		ctx := context.Background()
		dbs := MustOpenShared(t, 2)
		a, b := dbs[0], dbs[1]
		if want := engineOf(t) == "postgres"; a.Shared() != want {
			t.Errorf("Shared() = %v on %s", a.Shared(), engineOf(t))
		}
		var mu sync.Mutex
		var heardA, heardB []wizard.Change
		a.OnChange(func(ch wizard.Change) { mu.Lock(); heardA = append(heardA, ch); mu.Unlock() })
		b.OnChange(func(ch wizard.Change) { mu.Lock(); heardB = append(heardB, ch); mu.Unlock() })
		signals, stop := b.Listen("case")
		defer stop()

		c1, c2 := newCase(t, a, "https://shop.example.com/", ""), newCase(t, a, "https://shop.example.com/b", "")
		run1, err := a.QueueProbe(ctx, c1.ID, "")
		must(t, err)
		run2, err := a.QueueProbe(ctx, c2.ID, "")
		must(t, err)
		read, err := b.CaseByID(ctx, c1.ID)
		must(t, err)
		mu.Lock()
		heardA, heardB = nil, nil
		mu.Unlock()
		for len(signals) > 0 {
			<-signals
		}

		must(t, a.FinishProbe(ctx, run1.ID, report, run2.ID))
		mu.Lock()
		want := wizard.Change{Cases: []int64{c1.ID, c2.ID}, Finished: []int64{run1.ID, run2.ID}}
		if len(heardA) != 1 || !reflect.DeepEqual(heardA[0], want) {
			t.Errorf("the writer's hook heard %+v, want %+v", heardA, want)
		}
		if a.Shared() && len(heardB) != 0 {
			t.Errorf("another instance's hook heard %+v", heardB)
		}
		mu.Unlock()
		v, err := b.CaseVersion(ctx, c1.ID)
		must(t, err)
		if v <= read.Version {
			t.Errorf("another instance reads version %d after the write, %d before", v, read.Version)
		}
		if again, err := b.CaseByID(ctx, c1.ID); err != nil || again.Version != v {
			t.Errorf("the case read says version %d, CaseVersion %d (%v)", again.Version, v, err)
		}
		got := map[string]bool{next(t, signals): true, next(t, signals): true}
		if !got[fmt.Sprint(c1.ID)] || !got[fmt.Sprint(c2.ID)] {
			t.Errorf("another instance heard the case signals %v, want %d and %d", got, c1.ID, c2.ID)
		}

		mu.Lock()
		heardA = nil
		mu.Unlock()
		if err := a.SetVisitorEmail(ctx, c1.ID+100, "vi@example.com"); wizard.ErrorCode(err) != wizard.ENOTFOUND {
			t.Fatalf("a write to no case: %v", err)
		}
		if err := a.SetStatus(ctx, c1.ID, wizard.StatusOpen, "ann"); err != nil { // the status it has: no change
			t.Fatal(err)
		}
		mu.Lock()
		if len(heardA) != 0 {
			t.Errorf("writes that changed nothing told the hooks %+v", heardA)
		}
		mu.Unlock()
		if after, _ := b.CaseVersion(ctx, c1.ID); after != v {
			t.Errorf("writes that changed nothing moved the version from %d to %d", v, after)
		}
		if _, err := a.CaseVersion(ctx, c1.ID+100); wizard.ErrorCode(err) != wizard.ENOTFOUND {
			t.Errorf("the version of no case: %v", err)
		}
	})
}
