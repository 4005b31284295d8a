//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// build compiles ./cmd/gatecheck of the module in root into dir.
func build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "gatecheck")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gatecheck")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("go build ./cmd/gatecheck did not finish in time (a cold build cache? run it once first): %w", ctx.Err())
		}
		return "", fmt.Errorf("go build ./cmd/gatecheck: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the folder of the go.mod in force.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from inside the gatecheck module (go env GOMOD: %q, %v)", mod, err)
	}
	return filepath.Dir(mod), nil
}

// revision describes the code under test: the commit, and whether the
// work tree differs from it.
func revision(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
		rev += " (with uncommitted changes)"
	}
	return rev
}

// gatecheck is gatecheck serve running as a child process.
type gatecheck struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:PORT
	logf   string
	exited chan struct{}
}

// startServer starts bin serve on a loopback port with a fresh database in
// dir, probing loopback allowed, plus the extra flags, and waits until
// /healthz answers.
func startServer(ctx context.Context, bin, dir, name string, extra []string) (*gatecheck, error) {
	return startServerArgs(ctx, bin, dir, name, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, name+".db"),
		"--allow-net", "127.0.0.0/8"}, extra...))
}

// startServerArgs starts bin with args (a serve command), logging to
// name.log in dir, and waits until /healthz answers.
func startServerArgs(ctx context.Context, bin, dir, name string, args []string) (*gatecheck, error) {
	extra := args
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	// Should the bench die, the server goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &gatecheck{cmd: cmd, logf: logPath, exited: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		line, _ := br.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, br)
		cmd.Wait()
		close(g.exited)
	}()
	fail := func(format string, a ...any) (*gatecheck, error) {
		g.kill()
		return nil, fmt.Errorf(format+"\n%s", append(a, g.logTail())...)
	}
	select {
	case line := <-lines:
		_, after, ok := strings.Cut(line, "serving ")
		if !ok {
			return fail("gatecheck serve %s did not start: %q", strings.Join(extra, " "), line)
		}
		g.base = strings.TrimSuffix(strings.Fields(after)[0], "/")
	case <-time.After(20 * time.Second):
		return fail("gatecheck serve said nothing in 20 s")
	case <-ctx.Done():
		return fail("gatecheck serve: %v", ctx.Err())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := pollClient.Get(g.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fail("gatecheck serve: /healthz did not answer 200 (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cleanEnv is the environment without GATECHECK_ settings, so that only
// the flags given here configure the server.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATECHECK_") {
			env = append(env, kv)
		}
	}
	return env
}

// stop sends SIGTERM and waits for the exit, killing the process after
// limit. It returns the exit status (-1 when killed).
func (g *gatecheck) stop(limit time.Duration) (int, error) {
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return -1, err
	}
	select {
	case <-g.exited:
		return g.cmd.ProcessState.ExitCode(), nil
	case <-time.After(limit):
		g.kill()
		return -1, fmt.Errorf("gatecheck serve did not stop within %v of SIGTERM; killed", limit)
	}
}

func (g *gatecheck) kill() {
	g.cmd.Process.Kill()
	select {
	case <-g.exited:
	case <-time.After(5 * time.Second):
	}
}

// cpu is the processor time the server has used so far.
func (g *gatecheck) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", g.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const userHZ = 100 // clock ticks per second on Linux
	return time.Duration(utime+stime) * time.Second / userHZ
}

// errorsLogged counts the server log's lines at level ERROR.
func (g *gatecheck) errorsLogged() int {
	b, _ := os.ReadFile(g.logf)
	return strings.Count(string(b), "level=ERROR")
}

func (g *gatecheck) logTail() string {
	b, _ := os.ReadFile(g.logf)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
