package bearer

import (
	"errors"
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// redirectScheme is a URL's scheme (RFC 3986 3.1).
var redirectScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// redirectSecret stands for a secret in a redirect's URL: a password, a
// query's value.
const redirectSecret = "Zs3cr3tZ"

// referenceFetchable reports whether a parsed URL is one a key set may
// come from: https, or plain http to loopback (localhost, or a loopback
// address), with a host.
func referenceFetchable(u *url.URL) bool {
	host := u.Hostname()
	if host == "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	ip := net.ParseIP(host)
	return u.Scheme == "http" && (host == "localhost" || ip != nil && ip.IsLoopback())
}

// FuzzCheckRedirect: checkRedirect refuses, with errJWKSRedirect, a
// redirect of a jwks_url to a URL that the jwks_url setting itself
// refuses or that is not https when the jwks_url is, and takes every
// other; one it takes is https or plain http to loopback. Called as Go's
// client calls it, with the Location resolved against the jwks_url, a
// redirect it takes is fetched from such a URL: the client goes where
// the checked text says. Its refusal never shows the password or the
// query's values of the URL it refuses, nor a password after its scheme
// when no "//" follows it (https:edge:password@idp/keys).
func FuzzCheckRedirect(f *testing.F) {
	for _, s := range [][2]string{
		{"HTTPS://idp.example/keys", "http://127.0.0.1:1234/keys"},
		{"https://idp.example/keys", "https://keys.idp.example/keys"},
		{"http://127.0.0.1:1234/keys", "http://127.0.0.1:5678/keys"},
		{"http://127.0.0.1:1234/keys", "http://jwks.example/keys"},
		{"http://127.0.0.1:1234/keys", "ftp://jwks.example/keys"},
		{"http://localhost/keys", "/other"},
		{"http://localhost/keys", "//jwks.example/keys"},
		{"https://idp.example/keys", "//keys.idp.example:8443/keys?x=1"},
		{"http://[::1]:8/keys", "HTTP://LOCALHOST/keys"},
		{"http://127.0.0.1/keys", "http://127.0.0.1:80@jwks.example/keys"},
		{"http://127.0.0.1/keys", "http://127.0.0.1.jwks.example/keys"},
		{"http://127.0.0.1/keys", "http://[::ffff:127.0.0.1]/keys"},
		{"https://idp.example/keys", "https://idp.example:0/keys"},
		{"https://idp.example/keys", "https://idp.example:65536/keys"},
		{"https://idp.example/keys", "https://idp.example:port/keys?code=SECRET"},
		{"https://idp.example/keys", "http://edge:SECRET@jwks.example/keys?code=SECRET"},
		{"https://idp.example/keys", "http:jwks.example/keys"},
		{"https://idp.example/keys", "https:/keys"},
		{"%zz", "https://idp.example/keys"},
		{"0", "A:://"},
		{"https://idp.example/keys", "https:idp.example/keys"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, from, location string) {
		// Called with the text as given.
		err := checkRedirect(from, location)
		fu, errFrom := url.Parse(from)
		tu, errTarget := url.Parse(location)
		stepsDown := errFrom == nil && errTarget == nil && fu.Scheme == "https" && tu.Scheme != "https"
		switch {
		case err != nil && !errors.Is(err, errJWKSRedirect):
			t.Fatalf("checkRedirect(%q, %q) = %v, not errJWKSRedirect", from, location, err)
		case err == nil && (checkJWKSURL(location) != nil || errFrom != nil || errTarget != nil || !referenceFetchable(tu) || stepsDown):
			t.Fatalf("checkRedirect(%q, %q) takes it", from, location)
		case err != nil && checkJWKSURL(location) == nil && errFrom == nil && !stepsDown:
			t.Fatalf("checkRedirect(%q, %q) = %v, for a URL jwks_url takes, no step down", from, location, err)
		}

		// Called as Go's client calls it: the Location resolved against
		// the jwks_url (one the setting takes), as text.
		if errFrom == nil && checkJWKSURL(from) == nil {
			if u, err := fu.Parse(location); err == nil {
				if checkRedirect(from, u.String()) == nil && (!referenceFetchable(u) || fu.Scheme == "https" && u.Scheme != "https") {
					t.Fatalf("from %q, the Location %q goes to %q (%s://%s), taken", from, location, u, u.Scheme, u.Host)
				}
			}
		}

		// A secret in the URL, never in the refusal.
		stem, _, _ := strings.Cut(location, "?")
		stem, _, _ = strings.Cut(stem, "#")
		if strings.Contains(stem, redirectSecret) {
			return
		}
		targets := []string{stem + "?code=" + redirectSecret + "&x=" + redirectSecret}
		if scheme, rest, ok := strings.Cut(stem, "://"); ok {
			targets = append(targets, scheme+"://edge:"+redirectSecret+"@"+rest, scheme+"://edge:"+redirectSecret+"@"+rest+"?code="+redirectSecret)
		}
		// After a scheme that no "//" follows (a URL Go reads as opaque).
		if scheme, rest, ok := strings.Cut(stem, ":"); ok && redirectScheme.MatchString(scheme) {
			targets = append(targets, scheme+":edge:"+redirectSecret+"@"+rest)
		}
		for _, target := range targets {
			if err := checkRedirect(from, target); err != nil && strings.Contains(err.Error(), redirectSecret) {
				t.Fatalf("checkRedirect(%q, %q) shows the secret: %v", from, target, err)
			}
		}
	})
}
