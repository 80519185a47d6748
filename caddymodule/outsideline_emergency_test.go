package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// startOutsideLineEdge runs a limit edge in region under a strict policy
// (allow_regions of the region, deny_types unknown; outside_line
// outsideLine when not "") and a calls limit of one per hour.
func startOutsideLineEdge(t *testing.T, region, outsideLine string) limitEdge {
	t.Helper()
	policy := "destinations {\n\t\t\tallow_regions " + region + "\n\t\t\tdeny_types unknown\n"
	if outsideLine != "" {
		policy += "\t\t\toutside_line " + outsideLine + "\n"
	}
	policy += "\t\t}"
	pool := testkit.NewUpstream(t)
	config := strings.Replace(limitCaddyfile(t, pool, "store memory", policy, "limit calls 1 per 1h"),
		"default_region US", "default_region "+region, 1)
	return limitEdge{startEdge(t, "caddyfile", config, testkit.WithAdmin()), pool}
}

// TestOutsideLineEmergencyTelNumbers: with outside_line, an emergency
// number typed with the outside-line digit in a tel: URI or a bare number
// (tel:9911, 9911 with outside_line 9 in the US; tel:0112, 0112, tel:0110
// with outside_line 0 in Germany) is an emergency number, as sip:9911@gw
// is: under a strict policy (allow_regions of the region, deny_types
// unknown) and with the calls limit spent it is delivered, in every
// property and body that holds a number (to, phoneNumber, a forwarding
// target, a batch part, an XML body), as written (tel:9911, tel:0112: no
// country code before it, which the pool's dial plan would not turn back
// into the emergency code), and audited as an emergency number, masked.
// Digits that are no exact prefix and emergency code (tel:99110,
// tel:9912, tel:+19911), or 9911 without outside_line, are read as
// before: never delivered here.
func TestOutsideLineEmergencyTelNumbers(t *testing.T) {
	alice := caller{"tenant-1", "alice"}.header(t)
	type row struct {
		name, path, contentType, body string
		delivered                     string // what the pool's body holds
	}
	json := func(name, path, body, delivered string) row {
		return row{name, path, "application/json", body, delivered}
	}
	const (
		start   = "/communication/startPhoneAudio"
		add     = "/communication/conversations/eee0/phoneAudio/addPhoneAudio"
		forward = "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact"
		xmlNS   = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`
	)
	// A batch is no emergency call (see Handler.usage): its part is a
	// startAudio, which rings no callback number of the caller's that the
	// limits count.
	batch := func(name, body, delivered string) row {
		return row{name, "/batch", batchType,
			batchPart(true, innerPOST(limitApp+"/communication/startAudio", "application/json", body)) + "--b--\r\n", delivered}
	}
	xml := func(name, to, delivered string) row {
		return row{name, start, "application/vnd.microsoft.com.ucwa+xml",
			xmlNS + `<property name="to">` + to + `</property></input>`, delivered}
	}
	for _, region := range []struct {
		region, outsideLine, spend string
		emergency                  []row
		controls                   []string
	}{
		{"US", "9", "+14255550000", []row{
			json("tel: URI in to", start, `{"to":"tel:9911"}`, `"to":"tel:9911"`),
			json("bare number in to", start, `{"to":"9911"}`, `"to":"tel:9911"`),
			json("with separators", start, `{"to":"9-911"}`, `"to":"tel:9911"`),
			json("phoneNumber of addPhoneAudio", add, `{"to":"sip:bob@contoso.com","phoneNumber":"tel:9911"}`, `"phoneNumber":"tel:9911"`),
			json("bare phoneNumber", add, `{"to":"sip:bob@contoso.com","phoneNumber":"9112"}`, `"phoneNumber":"tel:9112"`),
			json("forwarding target", forward, `{"target":"tel:9911"}`, `"target":"tel:9911"`),
			batch("batch part", `{"to":"tel:9911"}`, `"to":"tel:9911"`),
			xml("XML body", "tel:9911", `>tel:9911<`),
			xml("XML body, bare", "9911", `>tel:9911<`),
		}, []string{"tel:99110", "tel:9912", "tel:+19911", "tel:9911234", "99110", "tel:9911;ext=1", "tel:99911"}},
		{"DE", "0", "+4930123456", []row{
			json("tel: URI 112", start, `{"to":"tel:0112"}`, `"to":"tel:0112"`),
			json("bare 112", start, `{"to":"0112"}`, `"to":"tel:0112"`),
			json("tel: URI 110", start, `{"to":"tel:0110"}`, `"to":"tel:0110"`),
			json("phoneNumber of addPhoneAudio", add, `{"to":"sip:bob@contoso.com","phoneNumber":"tel:0112"}`, `"phoneNumber":"tel:0112"`),
			batch("batch part", `{"to":"0110"}`, `"to":"tel:0110"`),
			xml("XML body", "tel:0112", `>tel:0112<`),
		}, []string{"tel:01120", "tel:0113", "tel:+490112", "tel:00112"}},
	} {
		// Without outside_line, the controls and the emergency rows are
		// answered as before: each control's answer is kept, for the edge
		// with outside_line to answer alike.
		plainStatus := map[string]int{}
		plainSubcode := map[string]string{}
		t.Run(region.region+" without outside_line", func(t *testing.T) {
			plain := startOutsideLineEdge(t, region.region, "")
			if resp := plain.send(callTo(region.spend, alice)); resp.Status != http.StatusCreated {
				t.Fatalf("the first call: %d %s", resp.Status, resp.Body)
			}
			for _, to := range region.controls {
				resp := plain.send(callTo(to, alice))
				plainStatus[to], plainSubcode[to] = resp.Status, ucwaError(t, resp.Body).Subcode
			}
			for _, r := range region.emergency[:2] {
				if resp := plain.send(limitRequest(r.path, r.body, alice)); resp.Status == http.StatusCreated {
					t.Errorf("%s: delivered, as before it must not be", r.body)
				}
			}
			if got := plain.pool.Requests.Load(); got != 1 {
				t.Errorf("the pool got %d requests, want 1", got)
			}
		})
		t.Run(region.region, func(t *testing.T) {
			e := startOutsideLineEdge(t, region.region, region.outsideLine)
			// The first call spends the budget.
			if resp := e.send(callTo(region.spend, alice)); resp.Status != http.StatusCreated {
				t.Fatalf("the first call: %d %s", resp.Status, resp.Body)
			}
			assertLimited(t, e.send(callTo(region.spend, alice)), "calls", 3600)
			for _, r := range region.emergency {
				t.Run(r.name, func(t *testing.T) {
					before := len(e.pool.Received())
					audits := len(auditLines(t, e.Logs().String()))
					req := testkit.Request{URL: limitApp + r.path, ContentType: r.contentType, Body: r.body, Header: alice.Clone()}
					if r.contentType == batchType {
						req.Accept = "multipart/batching"
					}
					resp := e.send(req)
					if resp.Status != http.StatusCreated && resp.Status != http.StatusNoContent && resp.Status != http.StatusOK {
						t.Fatalf("%d %s, want it delivered", resp.Status, resp.Body)
					}
					got := e.pool.Received()[before:]
					if len(got) != 1 || !strings.Contains(got[0].Body, r.delivered) {
						t.Fatalf("the pool got %+v, want one request holding %s", got, r.delivered)
					}
					if strings.Contains(got[0].Body, "+1") || strings.Contains(got[0].Body, "+49") {
						t.Errorf("delivered with a country code: %s", got[0].Body)
					}
					var a auditLine
					testkit.Eventually(t, "an audit line", func() bool {
						lines := auditLines(t, e.Logs().String())
						if len(lines) > audits {
							a = lines[len(lines)-1]
						}
						return len(lines) > audits
					})
					found := false
					for _, d := range a.Destinations {
						if d.Emergency {
							found = true
							if d.Rule != "emergency" || d.Decision != "allowed" || d.Destination != "****" {
								t.Errorf("audited as %+v, want allowed by emergency, masked ****", d)
							}
						}
					}
					if !found {
						t.Errorf("no destination audited as an emergency number: %+v", a.Destinations)
					}
				})
			}
			// The controls are answered as without outside_line, and never
			// delivered.
			for _, to := range region.controls {
				before := len(e.pool.Received())
				resp := e.send(callTo(to, alice))
				if resp.Status == http.StatusCreated || len(e.pool.Received()) != before {
					t.Errorf("%s: %d %s, delivered as no emergency number may be with the budget spent", to, resp.Status, resp.Body)
				}
				if resp.Status != plainStatus[to] || ucwaError(t, resp.Body).Subcode != plainSubcode[to] {
					t.Errorf("%s: %d %s with outside_line, %d %s without", to, resp.Status, resp.Body, plainStatus[to], plainSubcode[to])
				}
			}
		})
	}
}

// TestOutsideLineEmergencyDialledAsWritten: an outside_line prefix and
// an emergency short code that, dialled as written, are something else
// in the region are no emergency number: a pool or a gateway that does
// not take the prefix rings that. With outside_line 8, 8112 is the
// fixed line +352 8112 in Luxembourg, read and forwarded as that number
// and counted (429 with the calls budget spent), and a premium-rate
// short code in Gibraltar (tel:8112: 400 NormalizationFailed, as
// without outside_line; sip:8112@gw: 403 short_code); neither is
// delivered, where 112 written plainly is, with the budget spent.
func TestOutsideLineEmergencyDialledAsWritten(t *testing.T) {
	alice := caller{"tenant-1", "alice"}.header(t)
	type refusal struct {
		to      string
		status  int
		subcode string // or the limit, for a 429
	}
	for _, c := range []struct {
		region, spend string
		refused       []refusal
	}{
		{"LU", "+35227123456", []refusal{{"tel:8112", http.StatusTooManyRequests, "calls"}, {"8112", http.StatusTooManyRequests, "calls"}}},
		{"GI", "+35020012345", []refusal{{"tel:8112", http.StatusBadRequest, "NormalizationFailed"}, {"8112", http.StatusBadRequest, "NormalizationFailed"},
			{"sip:8112@gw.contoso.com", http.StatusForbidden, "DialoutNotAllowed"}}},
	} {
		t.Run(c.region, func(t *testing.T) {
			e := startOutsideLineEdge(t, c.region, "8")
			if resp := e.send(callTo(c.spend, alice)); resp.Status != http.StatusCreated {
				t.Fatalf("the first call: %d %s", resp.Status, resp.Body)
			}
			assertLimited(t, e.send(callTo(c.spend, alice)), "calls", 3600)
			for _, to := range []string{"tel:112", "112"} {
				if resp := e.send(callTo(to, alice)); resp.Status != http.StatusCreated {
					t.Errorf("%s: %d %s, want it delivered as an emergency call", to, resp.Status, resp.Body)
				}
			}
			for _, r := range c.refused {
				resp := e.send(callTo(r.to, alice))
				switch {
				case resp.Status != r.status:
					t.Errorf("%s: %d %s, want %d", r.to, resp.Status, resp.Body, r.status)
				case r.status == http.StatusTooManyRequests:
					assertLimited(t, resp, r.subcode, 3600)
				case ucwaError(t, resp.Body).Subcode != r.subcode:
					t.Errorf("%s: %s, want %s", r.to, resp.Body, r.subcode)
				case r.status == http.StatusForbidden && !strings.Contains(ucwaError(t, resp.Body).Message, "short_code"):
					t.Errorf("%s: %s, want it refused by short_code", r.to, resp.Body)
				}
			}
			if got := e.pool.Requests.Load(); got != 3 {
				t.Errorf("the pool got %d requests, want 3", got)
			}
		})
	}
}
