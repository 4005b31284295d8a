package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// version is what an agent tells the server it runs; -ldflags "-X
// main.version=..." sets it, else the module's version.
var version = ""

func agentVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// errRefused is the server refusing the agent's token: retrying cannot help.
var errRefused = errors.New("the server refused this agent's token: it was never issued, or it was revoked; ask for a new one with gatecheck agent add")

// agentJob is a job as the server hands it out. Internal marks an
// internal check that staff asked for: the one kind of job for which the
// agent's --allow-net ranges apply. A server older than the field sends
// none, so such a server's jobs are all probed with the default guard.
type agentJob struct {
	ID       int64     `json:"id"`
	URL      string    `json:"url"`
	Deadline time.Time `json:"deadline"`
	Internal bool      `json:"internal"`
}

// agentClient speaks to the server. It dials only --server, directly: no
// proxy from the environment, so that the address the server sees (and
// names in an allowlist escalation) is the network's own, as the probes'.
type agentClient struct {
	server, token string
	http          *http.Client
	log           *slog.Logger
}

// cmdAgentRun runs an agent inside a customer's network: it asks the
// server for probe jobs (a long-poll: no inbound port), probes each URL
// with its own address guard and sends the report back, until SIGINT or
// SIGTERM (exit 0). A refused token exits 1.
//
// The guard refuses non-public addresses for every job but the internal
// checks staff ask for, which may reach the --allow-net ranges: the server
// refuses to send the others when its own guard refused the address, and
// the agent does not trust that alone, since a name can resolve
// differently inside the network than from the server.
func cmdAgentRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("agent run", stderr, "gatecheck agent run --server URL [--token TOKEN] [--allow-net CIDR]... [--samples N] [--timeout D]")
	server := fs.String("server", os.Getenv("GATECHECK_AGENT_SERVER"), "gatecheck's address, such as https://gatecheck.example.com (GATECHECK_AGENT_SERVER)")
	token := fs.String("token", "", "the agent's token from gatecheck agent add (better: GATECHECK_AGENT_TOKEN, which ps does not show)")
	pf := addProbeFlags(fs)
	if _, code, ok := parseArgs(fs, args, 0); !ok {
		return code
	}
	if *token == "" {
		*token = os.Getenv("GATECHECK_AGENT_TOKEN")
	}
	if *server == "" || *token == "" {
		fmt.Fprintln(stderr, "gatecheck agent run: --server and a token (--token or GATECHECK_AGENT_TOKEN) are needed")
		return exitUsage
	}
	if _, err := probes.Normalize(*server, probes.DefaultPorts); err != nil {
		fmt.Fprintln(stderr, "gatecheck agent run: --server:", err)
		return exitUsage
	}
	cfg, err := pf.config()
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck agent run:", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	c := &agentClient{server: strings.TrimRight(*server, "/"), token: *token, log: log,
		http: &http.Client{Transport: &http.Transport{Proxy: nil, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: time.Minute},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	internal := probes.New(cfg)
	public := internal
	if len(cfg.AllowNets) > 0 {
		pub := cfg
		pub.AllowNets = nil
		public = probes.New(pub)
	}
	log.Info("agent running", "server", c.server, "version", agentVersion(), "internal_ranges", len(cfg.AllowNets))
	backoff := time.Second
	for ctx.Err() == nil {
		job, err := c.poll(ctx)
		if errors.Is(err, errRefused) {
			fmt.Fprintln(stderr, "gatecheck agent run:", err)
			return exitProblem
		}
		var busy *errBusy
		if errors.As(err, &busy) {
			// Other agents share this token: wait as the server asks.
			log.Warn("the server has enough requests of this agent's token waiting; waiting", "in", busy.wait)
			sleep(ctx, busy.wait)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Warn("cannot reach the server; trying again", "err", err, "in", backoff)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
		if job == nil {
			continue
		}
		prober := public
		if job.Internal {
			prober = internal
		}
		if err := c.do(ctx, prober, job); errors.Is(err, errRefused) {
			fmt.Fprintln(stderr, "gatecheck agent run:", err)
			return exitProblem
		} else if err != nil && ctx.Err() == nil {
			log.Warn("job not reported", "job", job.ID, "err", err)
		}
	}
	log.Info("agent stopped")
	return exitOK
}

// do probes a job's URL, within the job's deadline, and reports.
func (c *agentClient) do(ctx context.Context, prober *probes.Prober, job *agentJob) error {
	c.log.Info("probing", "job", job.ID, "url", job.URL, "internal", job.Internal)
	pctx, cancel := context.WithDeadline(ctx, job.Deadline.Add(-2*time.Second))
	rep := prober.Run(pctx, job.URL, nil)
	cancel()
	if ctx.Err() != nil {
		// Stopped mid-job: the lease passes and the job is given back.
		return ctx.Err()
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	for backoff := time.Second; ; backoff = min(2*backoff, 10*time.Second) {
		status, msg, err := c.post(ctx, fmt.Sprintf("/agent/v1/jobs/%d/report", job.ID), body, 30*time.Second)
		switch {
		case err == nil && status == http.StatusNoContent:
			c.log.Info("reported", "job", job.ID, "verdict", rep.Verdict.Code)
			return nil
		case err == nil && status == http.StatusUnauthorized:
			return errRefused
		case err == nil && status < 500:
			return fmt.Errorf("the server refused the report (%d): %s", status, msg)
		case time.Now().After(job.Deadline):
			return fmt.Errorf("the job's deadline passed before the report reached the server (%v, %d %s)", err, status, msg)
		}
		c.log.Warn("cannot send the report; trying again", "job", job.ID, "status", status, "err", err)
		sleep(ctx, backoff)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// errBusy is the server refusing another long-poll of this token (429),
// until wait passes.
type errBusy struct{ wait time.Duration }

func (e *errBusy) Error() string {
	return fmt.Sprintf("too many requests of this token at once; retry in %v", e.wait)
}

// poll asks for the next job; nil when there is none yet.
func (c *agentClient) poll(ctx context.Context) (*agentJob, error) {
	status, body, retry, err := c.postRetry(ctx, "/agent/v1/poll", nil, 90*time.Second)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNoContent:
		return nil, nil
	case status == http.StatusUnauthorized:
		return nil, errRefused
	case status == http.StatusTooManyRequests:
		return nil, &errBusy{wait: retry}
	case status != http.StatusOK:
		return nil, fmt.Errorf("the server answered %d: %s", status, body)
	}
	var job agentJob
	if err := json.Unmarshal([]byte(body), &job); err != nil || job.ID == 0 || job.URL == "" {
		return nil, fmt.Errorf("the server sent a job that is not one: %.200s", body)
	}
	return &job, nil
}

// post sends body to the server with the agent's token, and returns the
// status and the start of the answer.
func (c *agentClient) post(ctx context.Context, path string, body []byte, limit time.Duration) (int, string, error) {
	status, msg, _, err := c.postRetry(ctx, path, body, limit)
	return status, msg, err
}

// postRetry is post that also returns the answer's Retry-After (between
// 1 s and 1 min; 5 s when absent).
func (c *agentClient) postRetry(ctx context.Context, path string, body []byte, limit time.Duration) (int, string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatecheck-agent/"+agentVersion())
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	retry := 5 * time.Second
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		retry = min(max(time.Duration(n)*time.Second, time.Second), time.Minute)
	}
	return resp.StatusCode, strings.TrimSpace(string(b)), retry, nil
}

// sleep waits for d or ctx.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
