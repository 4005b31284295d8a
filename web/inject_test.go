package web

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/html"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// inject is the markup a field carries: a script and an element with an
// event handler, each naming the field, so that a page that lets it
// through says which field did.
func inject(field string) string {
	return "<script>alert('" + field + "')</script><img src=x onerror=alert('" + field + "')>"
}

// injectTight is inject without spaces, for fields that cannot hold them
// (a URL, a header token): the handler is on an <svg/onload=…>.
func injectTight(field string) string {
	return "<script>alert('" + field + "')</script><svg/onload=alert('" + field + "')>"
}

// rawMarkup finds the payloads as markup in a body: were any of these in
// a page as they are, the browser would make elements of them.
var rawMarkup = regexp.MustCompile(`(?i)<script>alert\(|<img src=x|<svg/onload`)

// injectedElements parses a page as a browser would and lists the
// elements no template of gatecheck writes: a script that is not one of
// our files, any event handler attribute, an image not ours, a frame or
// an object. text is what the page shows: its text and its attributes'
// values (a form's fields as typed, say).
func injectedElements(page string) (found []string, text string, err error) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return nil, "", err
	}
	var sb strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			sb.WriteString(n.Data)
		case html.ElementNode:
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
				sb.WriteString(" " + a.Val + " ")
				if strings.HasPrefix(a.Key, "on") {
					found = append(found, fmt.Sprintf("<%s %s=%q>", n.Data, a.Key, a.Val))
				}
			}
			switch n.Data {
			case "script":
				if !strings.HasPrefix(attr["src"], "/static/") || n.FirstChild != nil {
					found = append(found, fmt.Sprintf("<script src=%q>%s", attr["src"], textOf(n)))
				}
				return // its text is not the page's
			case "img", "iframe", "object", "embed", "frame":
				if src := attr["src"]; n.Data != "img" || !(strings.HasPrefix(src, "/static/") || strings.HasPrefix(src, "data:")) {
					found = append(found, fmt.Sprintf("<%s %v>", n.Data, n.Attr))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found, sb.String(), nil
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

// hostileSite is a site whose every answer is an attack on whoever shows
// it: its Server and other headers, a redirect's Location, its page. "/"
// (and any other path) redirects to /next, which answers 503 as nginx.
func hostileSite(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/next" {
			w.Header().Set("Location", "/next?"+injectTight("location"))
			w.WriteHeader(http.StatusFound)
			return
		}
		h := w.Header()
		h.Set("Server", "nginx "+inject("server"))
		h.Set("Retry-After", inject("retry-after"))
		h.Set("X-Evil", inject("header"))
		h.Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "<html><body><h1>503 Service Temporarily Unavailable</h1>"+inject("body")+"\r\n<hr><center>nginx</center></body></html>")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// hostileCertSite is an https site whose certificate's names are markup.
func hostileCertSite(t *testing.T) *httptest.Server {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: inject("cert-cn"), Organization: []string{inject("cert-org")}},
		DNSNames:     []string{inject("cert-san")},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the prober refuses the certificate, as it should
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// hostileReceiver is a webhook destination that refuses every delivery
// with markup as its answer.
func hostileReceiver(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, inject("hook-answer"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestUserTextNeverBecomesMarkup puts markup in every field a person or a
// probed server controls (the URL, the ticket, a staff note, an incident's
// note and notice, a site's headers, redirect, page and certificate names,
// an agent's version and report, a webhook's address, template and its
// destination's answer) and reads every page that shows them, parsed as a
// browser would: each shows the text, and none has an element the text
// made. JSON carries it escaped, so that no sniffing makes markup of it.
func TestUserTextNeverBecomesMarkup(t *testing.T) {
	a := newApp(t, func(c *Config) {
		c.IncidentMinReports = 1
		c.AgentPoll = 2 * time.Second
		c.WebhookTick = 20 * time.Millisecond
		c.WebhookAllowNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	ctx := context.Background()
	a.addStaff("ann", wizard.RoleAdmin)
	a.signIn("ann", staffPassword)
	_, agentToken, err := a.db.CreateAgent(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	receiver := hostileReceiver(t)
	hookURL := receiver.URL + "/hook?" + injectTight("hook-url")
	resp, page := a.do("POST", "/staff/webhooks", url.Values{"url": {hookURL},
		"template": {`{"text": {{json .Case.URL}}, "note": "` + inject("hook-template") + `"}`}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("adding the webhook: %d %s", resp.StatusCode, excerpt(page, `role="alert"`))
	}

	site := hostileSite(t)
	visitorURL := site.URL + "/?q=" + injectTight("url")
	token := a.createCase(visitorURL, inject("ticket"))
	certToken := a.createCase(hostileCertSite(t).URL, "")
	a.waitProbed(token)
	a.waitProbed(certToken)

	// A case with an agent, whose version and report are markup.
	agentCase := a.apiCreate(a.apiKey("inject"), fmt.Sprintf(`{"url": %q, "agents": ["office"]}`, site.URL+"/agent"))
	a.waitProbed(agentCase)
	poll, _ := http.NewRequest("POST", a.ts.URL+"/agent/v1/poll", nil)
	poll.Header.Set("Authorization", "Bearer "+agentToken)
	poll.Header.Set("User-Agent", "gatecheck-agent/"+injectTight("agent-version"))
	presp, err := http.DefaultClient.Do(poll)
	if err != nil {
		t.Fatal(err)
	}
	var job agentJSON
	json.NewDecoder(presp.Body).Decode(&job)
	presp.Body.Close()
	if presp.StatusCode != http.StatusOK {
		t.Fatalf("the agent's poll: %d", presp.StatusCode)
	}
	rep, _ := json.Marshal(&probes.Report{URL: job.URL,
		Verdict: probes.Verdict{Code: probes.AccessBlocked, Summary: inject("agent-summary"), Explanation: inject("agent-explanation")},
		Gateway: probes.Gateway{Name: inject("agent-gateway"), Signals: []string{inject("agent-signal")}}})
	report, _ := http.NewRequest("POST", fmt.Sprintf("%s/agent/v1/jobs/%d/report", a.ts.URL, job.ID), bytes.NewReader(rep))
	report.Header = poll.Header
	if resp, err := http.DefaultClient.Do(report); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the agent's report: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Staff write on the case and on its incident.
	if resp, _ := a.do("POST", "/staff/c/"+token+"/notes", url.Values{"body": {inject("note")}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("note: %d", resp.StatusCode)
	}
	if resp, _ := a.do("POST", "/staff/c/"+token+"/notes", url.Values{"body": {inject("reply")}, "to": {"visitor"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reply: %d", resp.StatusCode)
	}
	const incidentPath = "/staff/incidents/127.0.0.1/service_unavailable"
	_, page = a.do("GET", incidentPath+"?window=1h", nil)
	m := untilField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no incident of the hostile site: %s", excerpt(page, "<main"))
	}
	if resp, page := a.do("POST", incidentPath+"/notes", url.Values{"body": {inject("incident-note")}, "window": {"1h"}, "until": {m[1]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("incident note: %d %s", resp.StatusCode, excerpt(page, `role="alert"`))
	}
	if resp, _ := a.do("POST", incidentPath+"/notice", url.Values{"body": {inject("notice")}, "window": {"1h"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("notice: %d", resp.StatusCode)
	}
	// The visitor walks to the escalation, whose summary quotes it all.
	a.answer(token, "role-overload", "user")
	a.answer(token, "fix-wait", "broken")
	waitFor(t, "the webhook's refused delivery", func() bool {
		_, page := a.do("GET", "/staff/webhooks", nil)
		return strings.Contains(page, "hook-answer")
	})

	// Each page, and the fields it must show (as text).
	pages := []struct {
		path string
		show []string
	}{
		{"/c/" + token, []string{"url", "ticket", "notice", "retry-after", "reply"}},
		{"/c/" + token + "/at/probe", []string{"url", "ticket"}},
		{"/c/" + certToken, []string{"notice"}},
		{"/c/" + agentCase, []string{"notice"}},
		{"/start?url=" + url.QueryEscape(inject("start-url")) + "&ticket=" + url.QueryEscape(inject("start-ticket")), []string{"start-url", "start-ticket"}},
		{"/staff", []string{"url", "ticket"}},
		{"/staff?q=" + url.QueryEscape(inject("search")) + "&ticket=" + url.QueryEscape(inject("ticket-filter")), []string{"search", "ticket-filter"}},
		{"/staff/c/" + token, []string{"url", "ticket", "note", "reply", "incident-note", "retry-after", "server", "body", "location"}},
		{"/staff/c/" + certToken, []string{"cert-cn", "cert-org", "cert-san"}},
		{"/staff/c/" + agentCase, []string{"incident-note", "agent-summary"}},
		{"/staff/incidents", []string{"notice"}},
		{incidentPath, []string{"url", "ticket", "notice"}},
		{"/staff/agents", []string{"agent-version"}},
		{"/staff/webhooks", []string{"hook-url", "hook-answer"}},
		{"/staff/login?next=" + url.QueryEscape("/staff?q="+inject("next")), nil},
	}
	shown := map[string]bool{}
	for _, p := range pages {
		resp, page := a.do("GET", p.path, nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", p.path, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		checkPage(t, p.path, page, p.show, shown)
	}
	// Forms sent back with what was typed.
	for _, f := range []struct {
		path string
		form url.Values
		show []string
	}{
		{"/cases", url.Values{"url": {inject("typed-url")}, "ticket": {inject("typed-ticket")}}, []string{"typed-url", "typed-ticket"}},
		{"/staff/login", url.Values{"name": {inject("typed-name")}, "password": {"x"}, "next": {"/staff?" + inject("typed-next")}}, []string{"typed-name"}},
		{"/staff/c/" + token + "/notes", url.Values{"body": {inject("typed-note") + strings.Repeat("x", 10001)}}, []string{"typed-note"}},
		{incidentPath + "/notice", url.Values{"body": {inject("typed-notice") + strings.Repeat("x", 2001)}}, []string{"typed-notice"}},
		{"/staff/webhooks", url.Values{"url": {"ftp://" + injectTight("typed-hook")}, "template": {inject("typed-template") + "{{"}}, []string{"typed-hook", "typed-template"}},
	} {
		resp, page := a.do("POST", f.path, f.form)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("POST %s with markup: %d; want it refused and the form kept", f.path, resp.StatusCode)
		}
		checkPage(t, "POST "+f.path, page, f.show, shown)
	}
	// Every field reached some page: the test sees them all.
	for _, f := range []string{"url", "ticket", "note", "reply", "incident-note", "notice", "server", "retry-after", "body", "location",
		"cert-cn", "cert-org", "cert-san", "agent-version", "agent-summary", "hook-url", "hook-answer", "typed-template"} {
		if !shown[f] {
			t.Errorf("no page showed the field %q", f)
		}
	}

	// JSON: the markup escaped, never as it was sent.
	for _, path := range []string{"/staff/c/" + token + "/export.json", "/api/cases/" + token, "/api/cases/" + certToken, "/api/cases/" + agentCase,
		"/staff/c/" + agentCase + "/export.json", "/api/incidents?window=1h", "/api/incidents/127.0.0.1/service_unavailable?window=1h"} {
		resp, body := a.do("GET", path, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %s %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"))
		}
		if loc := rawMarkup.FindStringIndex(body); loc != nil {
			t.Errorf("%s carries markup unescaped: %s", path, body[max(0, loc[0]-100):min(len(body), loc[1]+100)])
		}
		if !strings.Contains(body, `\u003cscript\u003ealert(`) {
			t.Errorf("%s does not carry the markup at all (escaped): the check above proves nothing", path)
		}
	}
}

// checkPage fails for a page with markup in it as markup, or without the
// fields it must show as text; it notes which fields it saw.
func checkPage(t *testing.T, what, page string, show []string, shown map[string]bool) {
	t.Helper()
	if loc := rawMarkup.FindStringIndex(page); loc != nil {
		t.Errorf("%s has markup a field brought, unescaped: %q", what, page[max(0, loc[0]-150):min(len(page), loc[1]+100)])
	}
	found, text, err := injectedElements(page)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	for _, f := range found {
		t.Errorf("%s has an element a field made: %s", what, f)
	}
	for _, f := range show {
		if !strings.Contains(text, "alert('"+f+"')") {
			t.Errorf("%s does not show the field %q as text", what, f)
		}
	}
	for _, m := range regexp.MustCompile(`alert\('([a-z-]+)'\)`).FindAllStringSubmatch(text, -1) {
		shown[m[1]] = true
	}
}

// TestDNSTextNeverBecomesMarkup: what a resolver says of a name (its
// Extended DNS Error's text, here markup) reaches staff pages as text, and
// the visitor's page not at all.
func TestDNSTextNeverBecomesMarkup(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Rcode = dns.RcodeServerFailure
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeProhibited, ExtraText: inject("ede")})
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	a := newApp(t, func(c *Config) {
		c.Prober = probes.New(probes.Config{Timeout: 3 * time.Second, Samples: 1, SampleSpacing: time.Millisecond,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, ResolverAddr: pc.LocalAddr().String()})
	})
	a.addStaff("ann", wizard.RoleAdmin)
	a.signIn("ann", staffPassword)
	token := a.createCase("http://shop.gatecheck-test/", "")
	a.waitProbed(token)
	if rep := a.apiCase(token).Probe.Report; rep == nil || rep.Verdict.Code != probes.DNSFailure || len(rep.DNS.EDE) == 0 {
		t.Fatalf("report: %+v", rep)
	}
	shown := map[string]bool{}
	_, page := a.do("GET", "/staff/c/"+token, nil)
	checkPage(t, "staff case", page, []string{"ede"}, shown)
	_, page = a.do("GET", "/c/"+token, nil)
	checkPage(t, "visitor case", page, nil, shown)
	if strings.Contains(page, "alert('ede')") {
		t.Error("the visitor's page quotes the resolver's own words")
	}
	if !strings.Contains(html.UnescapeString(page), "said that it does not answer gatecheck's server") {
		t.Errorf("the visitor's page does not say what the resolver's error means: %s", excerpt(page, "<main"))
	}
}
