package probes

import "testing"

// TestTwinOfABareNameWithAPort: a name typed with a port and no scheme
// has the other scheme on the same port as its twin; a typed scheme with
// another port has none; a bare name without a port keeps the default
// ports' twin.
func TestTwinOfABareNameWithAPort(t *testing.T) {
	for _, tc := range []struct{ typed, twin string }{
		{"shop.test:8443", "http://shop.test:8443/"},
		{"shop.test:8080/cart", "http://shop.test:8080/cart"},
		{"shop.test:80", "http://shop.test/"},
		{"shop.test", "http://shop.test/"},
		{"https://shop.test:8443/", ""},
		{"http://shop.test:8080/", ""},
		{"https://shop.test/", "http://shop.test/"},
	} {
		target, err := Normalize(tc.typed, DefaultPorts)
		if err != nil {
			t.Fatalf("%s: %v", tc.typed, err)
		}
		got := ""
		if tw := target.Twin(DefaultPorts); tw != nil {
			got = tw.String()
			if wantDefault := tw.Port == DefaultPorts.of(tw.URL.Scheme); tw.DefaultPort != wantDefault {
				t.Errorf("%s: twin %s on port %d says default %v", tc.typed, got, tw.Port, tw.DefaultPort)
			}
		}
		if got != tc.twin {
			t.Errorf("%s: twin %q, want %q", tc.typed, got, tc.twin)
		}
	}
}
