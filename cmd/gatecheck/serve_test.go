package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// TestServeEndToEnd starts the real server on :0, walks a whole wizard
// against a broken gateway on loopback, reads the case back as staff and
// through the API, shuts down gracefully and backs the database up.
func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gatecheck.db")
	gw := nginx502(t)

	if code, out, errs := runWith(t, "correct horse battery\n", "user", "add", "--db", dbPath, "ann"); code != 0 || !strings.Contains(out, "Added ann") {
		t.Fatalf("user add: %d %s %s", code, out, errs)
	}
	if code, _, errs := runWith(t, "short\n", "user", "add", "--db", dbPath, "bob"); code != 2 || !strings.Contains(errs, "at least 10") {
		t.Errorf("short password: %d %s", code, errs)
	}
	if code, _, errs := runWith(t, "correct horse battery\n", "user", "add", "--db", dbPath, "ANN"); code != 1 || !strings.Contains(errs, "already a user") {
		t.Errorf("duplicate user: %d %s", code, errs)
	}

	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--addr", "127.0.0.1:0", "--db", dbPath, "--allow-net", "127.0.0.0/8", "--samples", "1",
			"--team", "CloudOps", "--org", "Acme"}, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	go io.Copy(io.Discard, pr)
	base := strings.TrimSuffix(strings.Fields(strings.SplitAfter(line, "serving ")[1])[0], "/")

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var cookie *http.Cookie
	do := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", base)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	if resp, body := do("GET", "/healthz", nil); resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	resp, _ := do("POST", "/cases", url.Values{"url": {gw.URL}, "ticket": {"INC-77"}})
	token := strings.TrimPrefix(resp.Header.Get("Location"), "/c/")
	if resp.StatusCode != http.StatusSeeOther || token == "" {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := do("GET", "/api/cases/"+token, nil)
		if strings.Contains(body, `"state": "done"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probes did not finish: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The visitor: the gateway's upstream fails; they wait, it persists,
	// they escalate with the summary.
	for _, a := range [][2]string{{"role-gateway", "user"}, {"fix-wait", "broken"}} {
		if resp, body := do("POST", "/c/"+token+"/answer", url.Values{"node": {a[0]}, "choice": {a[1]}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("answer %v: %d %s", a, resp.StatusCode, body)
		}
	}
	_, page := do("GET", "/c/"+token, nil)
	for _, want := range []string{"Tell the site&#39;s support", "Ready-to-send summary", "gateway_502", "INC-77", "Requester&#39;s IP address"} {
		if !strings.Contains(page, want) {
			t.Errorf("escalation page lacks %q", want)
		}
	}
	do("POST", "/c/"+token+"/answer", url.Values{"node": {"escalate-support"}, "choice": {"sent"}})

	// Staff read it back.
	resp, _ = do("POST", "/staff/login", url.Values{"name": {"ann"}, "password": {"correct horse battery"}})
	for _, c := range resp.Cookies() {
		if c.Name == "gatecheck_session" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("no session cookie: %d", resp.StatusCode)
	}
	_, page = do("GET", "/staff?status=escalated", nil)
	if !strings.Contains(page, gw.URL) {
		t.Errorf("the escalated case is not in the list")
	}
	_, page = do("GET", "/staff/c/"+token, nil)
	for _, want := range []string{"Step 1, Who are you in this?: I use the site, or support its users", "Status open → escalated", "Probe evidence"} {
		if !strings.Contains(page, want) {
			t.Errorf("staff page lacks %q", want)
		}
	}
	_, body := do("GET", "/api/cases/"+token, nil)
	var doc struct {
		Status string
		Steps  []struct{ Node, Answer string }
		Probe  struct{ State string }
	}
	json.Unmarshal([]byte(body), &doc)
	if doc.Status != "escalated" || len(doc.Steps) != 3 || doc.Probe.State != "done" {
		t.Errorf("API: %s", body)
	}

	// Graceful shutdown, then a backup of the closed database.
	stop()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("serve exited %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	cp := filepath.Join(dir, "copy.db")
	if code, out, errs := runWith(t, "", "backup", "--db", dbPath, cp); code != 0 {
		t.Fatalf("backup: %d %s %s", code, out, errs)
	}
	if code, _, _ := runWith(t, "", "backup", "--db", dbPath, cp); code != 2 {
		t.Error("backup overwrote a file")
	}
	db, err := sqlite.Open(context.Background(), cp)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, _ := db.IntegrityCheck(context.Background()); res != "ok" {
		t.Errorf("integrity of the copy: %s", res)
	}
	if c, err := db.Case(context.Background(), token); err != nil || c.Status != wizard.StatusEscalated {
		t.Errorf("the copy lacks the case: %v %v", c, err)
	}
}

func TestServeRefusesBadSettings(t *testing.T) {
	for _, args := range [][]string{
		{"--trusted-proxy", "nonsense"},
		{"--allow-webhook-net", "intranet"},
		{"--base-url", "ftp://x"},
		{"--tree", "/no/such/tree.yaml"},
		{"--samples", "-3"},
		{"--resolver", "dns.example:53"},
		{"--smtp-url", "smtp://mail.example.com"}, // no --mail-from
		{"--mail-from", "gatecheck@example.com"},  // no --smtp-url
		{"--smtp-url", "http://mail.example.com", "--mail-from", "gatecheck@example.com"}, // not SMTP
		{"--smtp-url", "smtp://mail.example.com?starttls=maybe", "--mail-from", "gatecheck@example.com"},
		{"--smtp-url", "smtp://mail.example.com", "--mail-from", "gatecheck"},
		{"unexpected"},
	} {
		args = append([]string{"serve", "--db", filepath.Join(t.TempDir(), "x.db"), "--addr", "127.0.0.1:0"}, args...)
		if code, _, errs := runWith(t, "", args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d %q", args, code, errs)
		}
	}
}

// TestBackupAndServeKeepFilesOwnerOnly: the database made by the commands
// and a backup of it are the owner's alone (mode 0600); a database left
// readable by everybody is tightened by `backup` and by `serve`, which say
// so on standard error.
func TestBackupAndServeKeepFilesOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask, which makes new files 0644
	defer syscall.Umask(old)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gatecheck.db")
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if code, out, errs := runWith(t, "correct horse battery\n", "user", "add", "--db", dbPath, "ann"); code != 0 {
		t.Fatalf("user add: %d %s %s", code, out, errs)
	}
	if m := mode(dbPath); m != 0o600 {
		t.Errorf("a new database: mode %04o, want 0600", m)
	}

	os.Chmod(dbPath, 0o644)
	cp := filepath.Join(dir, "copy.db")
	code, out, errs := runWith(t, "", "backup", "--db", dbPath, cp)
	if code != 0 {
		t.Fatalf("backup: %d %s %s", code, out, errs)
	}
	if m := mode(cp); m != 0o600 {
		t.Errorf("the backup: mode %04o, want 0600", m)
	}
	if m := mode(dbPath); m != 0o600 || !strings.Contains(errs, `msg="tightened file mode" path=`+dbPath+" old_mode=0644") {
		t.Errorf("backup of a 0644 database: now %04o, said %q", m, errs)
	}

	os.Chmod(dbPath, 0o644)
	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var logs bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--addr", "127.0.0.1:0", "--db", dbPath}, strings.NewReader(""), pw, &logs)
		pw.Close()
	}()
	if _, err := bufio.NewReader(pr).ReadString('\n'); err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	go io.Copy(io.Discard, pr)
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		if m := mode(p); m != 0o600 {
			t.Errorf("%s while serving: mode %04o, want 0600", filepath.Base(p), m)
		}
	}
	stop()
	if code := <-exited; code != 0 {
		t.Errorf("serve exited %d", code)
	}
	if !strings.Contains(logs.String(), `msg="tightened file mode" path=`+dbPath+" old_mode=0644") {
		t.Errorf("serve's log:\n%s", logs.String())
	}
}

// TestServeAllowWebhookNet: the ranges of --allow-webhook-net and
// GATECHECK_ALLOW_WEBHOOK_NETS are those admins' destinations may use;
// other internal addresses are still refused.
func TestServeAllowWebhookNet(t *testing.T) {
	t.Setenv("GATECHECK_ALLOW_WEBHOOK_NETS", "127.0.0.0/8")
	dbPath := filepath.Join(t.TempDir(), "gatecheck.db")
	if code, out, errs := runWith(t, "correct horse battery\n", "user", "add", "--admin", "--db", dbPath, "ann"); code != 0 {
		t.Fatalf("user add: %d %s %s", code, out, errs)
	}
	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--addr", "127.0.0.1:0", "--db", dbPath, "--allow-webhook-net", "::1"}, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	defer func() { stop(); <-exited }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	go io.Copy(io.Discard, pr)
	base := strings.TrimSuffix(strings.Fields(strings.SplitAfter(line, "serving ")[1])[0], "/")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var cookie *http.Cookie
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ := post("/staff/login", url.Values{"name": {"ann"}, "password": {"correct horse battery"}})
	for _, c := range resp.Cookies() {
		if c.Name == "gatecheck_session" {
			cookie = c
		}
	}
	for dest, want := range map[string]int{
		"http://127.0.0.1:9/hook":       http.StatusSeeOther,            // the environment's range
		"http://[::1]:9/hook":           http.StatusSeeOther,            // the flag's
		"http://169.254.169.254/latest": http.StatusUnprocessableEntity, // neither
		"http://10.0.0.1/hook":          http.StatusUnprocessableEntity,
	} {
		if resp, page := post("/staff/webhooks", url.Values{"url": {dest}}); resp.StatusCode != want {
			t.Errorf("%s: %d, want %d (%.300s)", dest, resp.StatusCode, want, page)
		}
	}
}
