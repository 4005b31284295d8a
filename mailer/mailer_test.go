package mailer

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		url, from string
		want      string // String(), or the start of the error
		ok        bool
	}{
		{"smtp://u:p@mail.example.com", "gatecheck@example.com", "smtp://mail.example.com:587", true},
		{"smtp://mail.example.com:25?starttls=opportunistic", "gatecheck <gatecheck@example.com>", "smtp://mail.example.com:25", true},
		{"smtp://mail.example.com:2525?starttls=none&auth=plain-noenc", "gatecheck@example.com", "smtp://mail.example.com:2525", true},
		{"smtps://u:p@mail.example.com", "gatecheck@example.com", "smtps://mail.example.com:465", true},
		{"smtps://mail.example.com?starttls=none", "gatecheck@example.com", "starttls does not apply", false},
		{"http://mail.example.com", "gatecheck@example.com", "the SMTP URL's scheme", false},
		{"smtp://:25", "gatecheck@example.com", "the SMTP URL names no host", false},
		{"smtp://mail.example.com:99999", "gatecheck@example.com", "the SMTP URL's port", false},
		{"smtp://mail.example.com?starttls=maybe", "gatecheck@example.com", "starttls=maybe", false},
		{"smtp://mail.example.com?auth=xoauth2", "gatecheck@example.com", "auth=xoauth2", false},
		{"smtp://mail.example.com?tls=1", "gatecheck@example.com", "the SMTP URL has an unknown option", false},
		{"smtp://mail.example.com", "gatecheck", "the sender", false},
	} {
		s, err := New(tc.url, tc.from)
		switch {
		case tc.ok && err != nil:
			t.Errorf("New(%q): %v", tc.url, err)
		case tc.ok && s.String() != tc.want:
			t.Errorf("New(%q) = %s, want %s", tc.url, s, tc.want)
		case !tc.ok && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("New(%q, %q): error %v, want %q…", tc.url, tc.from, err, tc.want)
		}
	}
	s, _ := New("smtp://user:hunter2@mail.example.com", "gatecheck <gatecheck@example.com>")
	if strings.Contains(s.String(), "hunter2") || s.From() != "gatecheck@example.com" {
		t.Errorf("String %s, From %s", s, s.From())
	}
}

// countingSession is an SMTP session that counts what it is asked.
type countingSession struct{ mails *atomic.Int32 }

func (s countingSession) Reset()        {}
func (s countingSession) Logout() error { return nil }
func (s countingSession) Mail(string, *smtp.MailOptions) error {
	s.mails.Add(1)
	return nil
}
func (s countingSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s countingSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// TestSendPolicy: against a real SMTP server on loopback that offers no
// TLS, the default smtp:// refuses to send (STARTTLS is mandatory) and
// starttls=opportunistic or none sends.
func TestSendPolicy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mails atomic.Int32
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return countingSession{&mails}, nil }))
	srv.Domain = "mail.test"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	msg := Message{To: "ops@example.com", ToName: "CloudOps", Subject: "shop.example: down", Body: "Case: https://gatecheck.example/c/abc\n"}
	for _, tc := range []struct {
		query string
		ok    bool
	}{{"", false}, {"?starttls=mandatory", false}, {"?starttls=opportunistic", true}, {"?starttls=none", true}} {
		before := mails.Load()
		s, err := New("smtp://"+ln.Addr().String()+tc.query, "gatecheck@example.org")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = s.Send(ctx, msg)
		cancel()
		if sent := mails.Load() > before; (err == nil) != tc.ok || sent != tc.ok {
			t.Errorf("%q: err %v, sent %v; want sent %v", tc.query, err, sent, tc.ok)
		}
	}
}
