package probes

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		port     int
		dflt     bool
	}{
		{"shop.example.com", "https://shop.example.com/", 443, true},
		{"  shop.example.com/cart?x=1  ", "https://shop.example.com/cart?x=1", 443, true},
		{"http://shop.example.com", "http://shop.example.com/", 80, true},
		{"HTTPS://Shop.Example.COM./a#frag", "https://shop.example.com/a", 443, true},
		{"https://user:secret@shop.example.com/", "https://shop.example.com/", 443, true},
		{"https://shop.example.com:8443/", "https://shop.example.com:8443/", 8443, false},
		{"http://shop.example.com:80/", "http://shop.example.com/", 80, true},
		{"//shop.example.com/x", "https://shop.example.com/x", 443, true},
		{"https://bücher.example/", "https://xn--bcher-kva.example/", 443, true},
		{"http://127.1/", "http://127.0.0.1/", 80, true},
		{"http://0x7f.0.0.1/", "http://127.0.0.1/", 80, true},
		{"http://2130706433/", "http://127.0.0.1/", 80, true},
		{"http://[2606:4700::1111]/", "http://[2606:4700::1111]/", 80, true},
		{"localhost:8080", "https://localhost:8080/", 8080, false},
	} {
		got, err := Normalize(tt.in, DefaultPorts)
		if err != nil {
			t.Errorf("Normalize(%q): %v", tt.in, err)
			continue
		}
		if got.String() != tt.want || got.Port != tt.port || got.DefaultPort != tt.dflt {
			t.Errorf("Normalize(%q) = %s port %d default %v, want %s port %d default %v",
				tt.in, got, got.Port, got.DefaultPort, tt.want, tt.port, tt.dflt)
		}
	}
}

func TestNormalizeRejects(t *testing.T) {
	for _, tt := range []struct{ in, says string }{
		{"", "enter the address"},
		{"   ", "enter the address"},
		{"ftp://files.example.com/", "only checks http:// and https://"},
		{"file:///etc/passwd", "only checks http:// and https://"},
		{"javascript:alert(1)", "not a valid"},
		{"gopher://x:70/", "only checks"},
		{"https://", "no host name"},
		{"https://shop.example.com:99999/", "not a valid port"},
		{"https://shop example.com/", "spaces"},
		{"https://shop.example.com/\x00", "invisible characters"},
		{"http://256.1.1.1/", "not a valid one"},
		{"http://0x1ffffffff/", "not a valid one"},
		{"https://" + strings.Repeat("a", 5000) + ".com/", "4096"},
	} {
		_, err := Normalize(tt.in, DefaultPorts)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("Normalize(%q) = %v, want an InputError", tt.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.says) {
			t.Errorf("Normalize(%q) says %q, want it to mention %q", tt.in, err, tt.says)
		}
	}
}

func TestTwin(t *testing.T) {
	ports := Ports{HTTP: 8080, HTTPS: 8443}
	tg, _ := Normalize("https://shop.test/a?b", ports)
	if tw := tg.Twin(ports); tw == nil || tw.String() != "http://shop.test:8080/a?b" {
		t.Errorf("twin of %s = %v", tg, tw)
	}
	tg, _ = Normalize("https://shop.test:9443/", ports)
	if tw := tg.Twin(ports); tw != nil {
		t.Errorf("a non-default port has a twin: %s", tw)
	}
	tg, _ = Normalize("http://shop.test/", DefaultPorts)
	if tw := tg.Twin(DefaultPorts); tw.String() != "https://shop.test/" {
		t.Errorf("twin = %s", tw)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"shop.example.com", "http://127.1/", "https://[::1]:8443/x", "http://0x7f.1", "ftp://x", "//a/b", "http://a:b@c/", "http://%zz/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tg, err := Normalize(in, DefaultPorts)
		if err != nil {
			return
		}
		// What comes out must be stable, credential-free, http(s), and
		// normalise to itself.
		again, err := Normalize(tg.String(), DefaultPorts)
		if err != nil {
			t.Fatalf("Normalize(%q) = %q, which does not normalise: %v", in, tg, err)
		}
		if again.String() != tg.String() {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, tg, again)
		}
		if tg.URL.User != nil || (tg.URL.Scheme != "http" && tg.URL.Scheme != "https") || tg.Host == "" {
			t.Fatalf("Normalize(%q) = %q", in, tg)
		}
		// The typed form comes back as the same target, bare or not.
		typed, err := Normalize(tg.Typed(), DefaultPorts)
		if err != nil || typed.String() != tg.String() || typed.Bare != tg.Bare {
			t.Fatalf("Normalize(%q).Typed() = %q, which normalises to %v (bare %v), %v", in, tg.Typed(), typed, typed != nil && typed.Bare, err)
		}
	})
}

// TestBareNames: an address typed without a scheme is https, marked bare,
// and keeps its bareness through Typed; one with a scheme is not bare.
func TestBareNames(t *testing.T) {
	for _, tt := range []struct {
		in, url, typed string
		bare           bool
	}{
		{"blocked.example", "https://blocked.example/", "blocked.example/", true},
		{"Shop.Example.com/cart?x=1", "https://shop.example.com/cart?x=1", "shop.example.com/cart?x=1", true},
		{"//shop.example.com/a", "https://shop.example.com/a", "shop.example.com/a", true},
		{"[2001:db8::1]/x", "https://[2001:db8::1]/x", "[2001:db8::1]/x", true},
		{"https://shop.example.com/", "https://shop.example.com/", "https://shop.example.com/", false},
		{"HTTP://shop.example.com", "http://shop.example.com/", "http://shop.example.com/", false},
	} {
		tg, err := Normalize(tt.in, DefaultPorts)
		if err != nil {
			t.Errorf("Normalize(%q): %v", tt.in, err)
			continue
		}
		if tg.String() != tt.url || tg.Bare != tt.bare || tg.Typed() != tt.typed {
			t.Errorf("Normalize(%q) = %s bare %v typed %q, want %s bare %v typed %q", tt.in, tg, tg.Bare, tg.Typed(), tt.url, tt.bare, tt.typed)
		}
		if tw := tg.Twin(DefaultPorts); tw == nil || tw.Bare != tt.bare {
			t.Errorf("the twin of %q loses its bareness: %+v", tt.in, tw)
		}
	}
}
