package probes

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Ports are the ports gatecheck treats as the defaults of each scheme. They
// are 80 and 443 everywhere but in tests, which serve both on loopback.
type Ports struct {
	HTTP  int
	HTTPS int
}

// DefaultPorts are the well-known ports of http and https.
var DefaultPorts = Ports{HTTP: 80, HTTPS: 443}

func (p Ports) of(scheme string) int {
	if scheme == "http" {
		return p.HTTP
	}
	return p.HTTPS
}

// Target is a URL that passed normalisation: scheme http or https, a host,
// an explicit port, no credentials and no fragment.
type Target struct {
	URL         *url.URL
	Host        string     // lower case, ASCII (IDNA), no brackets, no trailing dot
	Port        int        // always set
	DefaultPort bool       // the port is the scheme's default
	Addr        netip.Addr // set when Host is an IP literal (in any spelling)
	// Bare is true when the address was typed without a scheme
	// ("shop.example.com"): https was assumed, but a browser given it
	// would have fallen back to http had https not connected.
	Bare bool
}

// String returns the normalised URL.
func (t *Target) String() string { return t.URL.String() }

// Twin returns the same URL on the other scheme and its default port. A
// URL that names another port has no twin (nil: there is no way to know
// where the other scheme listens), unless it was typed without a scheme
// ("shop.example:8443"): its twin is the other scheme on the same port,
// since that is all a browser given it could try. Chrome takes a typed
// host:port as http (its https upgrade of typed names leaves other ports
// alone); a browser that puts https first tries it on that port, then
// http. A port mostly speaks one of the two, so the probes try both and
// judge as for any bare name: the scheme that answers is the one the
// person saw, the other a finding.
func (t *Target) Twin(ports Ports) *Target {
	if !t.DefaultPort && !t.Bare {
		return nil
	}
	scheme := "https"
	if t.URL.Scheme == "https" {
		scheme = "http"
	}
	u := *t.URL
	u.Scheme = scheme
	tw := *t
	tw.URL = &u
	if t.DefaultPort {
		tw.Port = ports.of(scheme)
	}
	tw.DefaultPort = tw.Port == ports.of(scheme)
	u.Host = hostPort(t.Host, tw.Port, tw.Port == defaultPortOf(scheme))
	return &tw
}

func defaultPortOf(scheme string) int {
	if scheme == "http" {
		return 80
	}
	return 443
}

// hostPort formats host and port for a URL, leaving out a well-known port.
func hostPort(host string, port int, omit bool) string {
	h := host
	if strings.Contains(host, ":") {
		h = "[" + host + "]"
	}
	if omit {
		return h
	}
	return h + ":" + strconv.Itoa(port)
}

// InputError is a URL that cannot be probed, with the reason in plain words.
type InputError struct {
	Input  string
	Reason string
}

func (e *InputError) Error() string { return e.Reason }

// plainParseError says in a few words what url.Parse refused.
func plainParseError(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "invalid port"):
		return "the number after the colon is not a valid port"
	case strings.Contains(msg, "invalid character"), strings.Contains(msg, "invalid URL escape"):
		return "it has a character that web addresses cannot have"
	case strings.Contains(msg, "missing ']'"), strings.Contains(msg, "invalid IP-literal"):
		return "the address in square brackets is not complete"
	}
	return "it is not written the way web addresses are"
}

// Normalize turns what a person typed into a Target: a URL without a scheme
// means https (and the Target is Bare); only http and https are accepted; credentials and fragments
// are dropped; internationalised names become their ASCII form; and the odd
// IPv4 spellings that resolvers accept (127.1, 0x7f000001, 017700000001)
// are rewritten as the dotted address they stand for, so that the report
// and the guard speak of the address that would really be dialled.
func Normalize(raw string, ports Ports) (*Target, error) {
	bad := func(format string, a ...any) error {
		return &InputError{Input: raw, Reason: fmt.Sprintf(format, a...)}
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, bad("enter the address of the page that shows the error, such as https://shop.example.com/")
	}
	if len(s) > 4096 {
		return nil, bad("that address is %d characters long; gatecheck takes addresses of up to 4096", len(s))
	}
	if !utf8.ValidString(s) {
		return nil, bad("the address has characters in it that cannot be read; type it again, or copy it from the browser's address bar")
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return nil, bad("web addresses have no spaces, and this one has a space in it; remove it, or copy the address from the browser's address bar")
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return nil, bad("the address has invisible characters in it (such as a line break); copy it again from the browser's address bar")
	}
	bare := false
	if strings.HasPrefix(s, "//") {
		s, bare = "https:"+s, true
	} else if !strings.Contains(s, "://") {
		s, bare = "https://"+s, true
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, bad("that does not look like a web address; check it for typing mistakes (%s)", plainParseError(err))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("gatecheck only checks http:// and https:// addresses, not %s://", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, bad("that is not a valid web address")
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" {
		u.Path = "/"
	}

	host := u.Hostname()
	if host == "" {
		return nil, bad("the address has no host name")
	}
	t := &Target{Bare: bare}
	if a, err := netip.ParseAddr(host); err == nil && strings.Contains(host, ":") {
		t.Addr = a.Unmap()
		if a.Is4In6() {
			t.Addr = a // keep the mapped form: it is what would be dialled
		}
		t.Host = a.String()
	} else {
		h, err := idna.Lookup.ToASCII(strings.TrimSuffix(host, "."))
		if err == nil {
			// The ASCII form must be one the lookup profile accepts as is.
			_, err = idna.Lookup.ToUnicode(h)
		}
		if err != nil || h == "" {
			return nil, bad("%q is not a valid host name", host)
		}
		h = strings.ToLower(h)
		if !validHostname(h) {
			return nil, bad("%q is not a valid host name", host)
		}
		if a, ok, err := parseLooseIPv4(h); err != nil {
			return nil, bad("%q looks like an IPv4 address but is not a valid one", host)
		} else if ok {
			t.Addr = a
			h = a.String()
		}
		t.Host = h
	}

	port := ports.of(u.Scheme)
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return nil, bad("%q is not a valid port number", ps)
		}
		port = n
	}
	t.Port = port
	t.DefaultPort = port == ports.of(u.Scheme)
	u.Host = hostPort(t.Host, port, port == defaultPortOf(u.Scheme))
	t.URL = u
	return t, nil
}

// Typed returns the address as a person would type it: the URL without
// its scheme when the Target is Bare, so that normalising it again gives a
// Bare Target, and the URL itself otherwise.
func (t *Target) Typed() string {
	if t.Bare {
		return strings.TrimPrefix(t.String(), t.URL.Scheme+"://")
	}
	return t.String()
}

// validHostname checks the ASCII form of a name: labels of 1 to 63 letters,
// digits, hyphens or underscores, 253 characters in all.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// parseLooseIPv4 parses the IPv4 spellings inet_aton accepts: one to four
// parts, each decimal, octal (leading 0) or hex (0x), the last filling the
// remaining bytes. ok is false when host is not numeric at all (a name).
func parseLooseIPv4(host string) (addr netip.Addr, ok bool, err error) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false, nil
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		v, numeric, perr := parseIPv4Part(p)
		if !numeric {
			return netip.Addr{}, false, nil
		}
		if perr != nil {
			return netip.Addr{}, true, perr
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i, v := range vals[:last] {
		if v > 255 {
			return netip.Addr{}, true, errors.New("part out of range")
		}
		n |= v << (8 * (3 - i))
	}
	rest := 8 * (4 - last)
	if vals[last] >= 1<<rest {
		return netip.Addr{}, true, errors.New("last part out of range")
	}
	n |= vals[last]
	if n > math.MaxUint32 {
		return netip.Addr{}, true, errors.New("out of range")
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true, nil
}

func parseIPv4Part(p string) (v uint64, numeric bool, err error) {
	if p == "" {
		return 0, false, nil
	}
	base, digits := 10, p
	switch {
	case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
		base, digits = 16, p[2:]
	case len(p) > 1 && p[0] == '0':
		base, digits = 8, p[1:]
	}
	for _, r := range digits {
		switch {
		case base == 16 && strings.ContainsRune("0123456789abcdefABCDEF", r):
		case base != 16 && r >= '0' && r <= '9':
		default:
			return 0, false, nil
		}
	}
	if digits == "" {
		return 0, true, nil
	}
	v, err = strconv.ParseUint(digits, base, 64)
	if err != nil {
		return 0, true, err
	}
	return v, true, nil
}
