package caddymodule

import (
	"encoding/json"
	"net"
	"net/netip"
	"strings"
)

// dynamicSource is one of a pool's dynamic upstream sources as its
// configuration (dynamic_upstreams) names it, before provisioning clears
// that: an a source's name and port (80 unless given), an srv source's
// domain (_service._proto.name, or its name alone without them).
type dynamicSource struct {
	source, name, port string
}

// dynamicSources returns the sources of raw, a pool's dynamic_upstreams,
// a multi source's in its order; a source of another module is none of
// them (what it looks up is its own).
func dynamicSources(raw json.RawMessage) []dynamicSource {
	var source struct {
		Source  string            `json:"source"`
		Name    string            `json:"name"`
		Port    string            `json:"port"`
		Service string            `json:"service"`
		Proto   string            `json:"proto"`
		Sources []json.RawMessage `json:"sources"`
	}
	if raw == nil || json.Unmarshal(raw, &source) != nil {
		return nil
	}
	switch source.Source {
	case "a":
		port := source.Port
		if port == "" {
			port = "80" // as the a source provisions it
		}
		return []dynamicSource{{source.Source, source.Name, port}}
	case "srv":
		name := source.Name
		if source.Service != "" || source.Proto != "" {
			name = "_" + source.Service + "._" + source.Proto + "." + name
		}
		return []dynamicSource{{source.Source, name, ""}}
	case "multi":
		var sources []dynamicSource
		for _, s := range source.Sources {
			sources = append(sources, dynamicSources(s)...)
		}
		return sources
	}
	return nil
}

// sourceHosts returns the host names the dynamic upstream sources of raw
// (see dynamicSources) look up, lower case: each is the pool's own as a
// configured upstream's host is (see pool.hosts), while the upstreams
// looked up are dialed at addresses, and a pool that builds its Location
// from the name its clients reach it by names that one. A name made of
// placeholders names no host before a request, and is left out, as an
// srv source's domain is, whose records list the hosts, which are dialed
// by name: those the request's lookup found are the pools' hosts for its
// answer (see poolResponseWriter.lookedUp).
func sourceHosts(raw json.RawMessage) []string {
	var hosts []string
	for _, s := range dynamicSources(raw) {
		// A fully qualified name's trailing dot names the same host.
		if name := strings.TrimSuffix(s.name, "."); s.source == "a" && name != "" && !strings.Contains(name, "{") {
			hosts = append(hosts, strings.ToLower(name))
		}
	}
	return hosts
}

// plainSources returns, for a pool whose transport speaks plain HTTP,
// the dynamic upstream sources of raw (see dynamicSources) whose
// upstreams it reaches over the network: an a source's name and port,
// unless the name is localhost or a loopback address; an srv source's
// domain, whose records may name any host. Each is named by its source
// (a fe.contoso.com:80, srv _ucwa._tcp.contoso.com), as the warning
// lists it beside the configured upstreams.
func plainSources(raw json.RawMessage) []string {
	var plain []string
	for _, s := range dynamicSources(raw) {
		if s.source == "srv" {
			plain = append(plain, "srv "+s.name)
			continue
		}
		name := strings.TrimSuffix(s.name, ".")
		if ip, err := netip.ParseAddr(name); strings.EqualFold(name, "localhost") || err == nil && ip.IsLoopback() {
			continue
		}
		plain = append(plain, "a "+net.JoinHostPort(s.name, s.port))
	}
	return plain
}
