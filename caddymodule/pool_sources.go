package caddymodule

import (
	"encoding/json"
	"strings"
)

// sourceHosts returns the host names a pool's dynamic upstream source
// looks up, from raw, its configuration (dynamic_upstreams) before it is
// provisioned, which clears it: an a source's name, and those of a multi
// source's sources. Each is the pool's own as a configured upstream's
// host is (see pool.hosts), while the upstreams looked up are dialed at
// addresses: a pool that builds its Location from the name its clients
// reach it by names that one. A name made of placeholders names no host
// before a request, and is left out, as a source that names no host
// (srv's name is a domain whose records list the hosts, which are
// dialed by name; see poolResponseWriter.ownHost).
func sourceHosts(raw json.RawMessage) []string {
	var source struct {
		Source  string            `json:"source"`
		Name    string            `json:"name"`
		Sources []json.RawMessage `json:"sources"`
	}
	if raw == nil || json.Unmarshal(raw, &source) != nil {
		return nil
	}
	switch source.Source {
	case "a":
		// A fully qualified name's trailing dot names the same host.
		if name := strings.TrimSuffix(source.Name, "."); name != "" && !strings.Contains(name, "{") {
			return []string{strings.ToLower(name)}
		}
	case "multi":
		var hosts []string
		for _, s := range source.Sources {
			hosts = append(hosts, sourceHosts(s)...)
		}
		return hosts
	}
	return nil
}
