package mailer

import (
	"strings"
	"testing"
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
