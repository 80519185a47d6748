package caddymodule

import (
	"fmt"
	"testing"
)

func TestSmokeCaddy(t *testing.T) {
	up := newUpstream(t)
	tester := startCaddy(t, fmt.Sprintf(`{
	admin localhost:ADMIN_PORT
	http_port EDGE_PORT
	skip_install_trust
}
:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
	}
	reverse_proxy %s
}`, up.hostport()), "caddyfile")
	resp, body := post(t, tester, "POST", edgeURL("/ucwa/v1/applications/1/communication/startPhoneAudio"), "application/json", "", `{"to":"4255551234"}`)
	if resp.StatusCode != 201 || len(up.received()) != 1 {
		t.Fatal(resp.StatusCode, body)
	}
}
