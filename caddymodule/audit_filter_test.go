package caddymodule

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAuditFilterOfMaskedFields: through a real Caddy, a filter
// encoder's hash filter on the audit line's application, operation_id
// and a caller's claim hashes them when the edge masked digits in them
// too (a pool's long application id, an operationId with a number, a
// sub that reads as a number), as it hashes them when it masked none:
// the filter gets each as a string, as Caddy's filters take one, and
// writes the hash, not the masked value in base64.
func TestAuditFilterOfMaskedFields(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	auditFile := filepath.Join(t.TempDir(), "ucwa-audit.log")
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output file %s
		format filter {
			wrap json
			fields {
				application hash
				operation_id hash
				caller>sub hash
			}
		}
	}
}
:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		primary %s
	}
}`, auditFile, pool.Addr()))
	hash := func(s string) string { return fmt.Sprintf("%.4x", sha256.Sum256([]byte(s))) }
	numberSub := "Bearer " + testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "",
		testkit.Claims(time.Now(), jwt.MapClaims{"scp": strings.Join(allScopes, " "), "sub": "+14255551234"}))
	for _, tc := range []struct {
		name, application, operationID, auth string
		status                               int
		want                                 map[string]string // a field (caller>sub: the caller's sub) and its value
	}{
		{"nothing masked", "104", "call-a", callerBearer(t), http.StatusCreated,
			map[string]string{"application": hash("104"), "operation_id": hash("call-a"), "caller>sub": hash(callerSub)}},
		{"masked, a caller's grant", "101246165550", "call-1-425-555-1234", numberSub, http.StatusCreated,
			map[string]string{"application": hash("1012461*****"), "operation_id": hash("call-*-***-***-****"), "caller>sub": hash("+1425555****")}},
		{"masked, no token", "101246165550", "call-1-425-555-1234", "", http.StatusUnauthorized,
			map[string]string{"application": hash("1012461*****")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fileLines(t, auditFile))
			header := http.Header{}
			if tc.auth != "" {
				header.Set("Authorization", tc.auth)
			}
			resp := e.send(testkit.Request{URL: "/ucwa/oauth/v1/applications/" + tc.application + "/communication/startPhoneAudio",
				ContentType: "application/json", Body: `{"to":"+14255551234","operationId":"` + tc.operationID + `"}`, Header: header})
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			var lines []string
			testkit.Eventually(t, "the audit line", func() bool {
				lines = fileLines(t, auditFile)
				return len(lines) > before
			})
			var line struct {
				Application string `json:"application"`
				OperationID string `json:"operation_id"`
				Caller      struct {
					Sub string `json:"sub"`
				} `json:"caller"`
			}
			if err := json.Unmarshal([]byte(lines[before]), &line); err != nil {
				t.Fatalf("the audit line is not JSON: %v: %s", err, lines[before])
			}
			got := map[string]string{"application": line.Application, "operation_id": line.OperationID}
			if line.Caller.Sub != "" {
				got["caller>sub"] = line.Caller.Sub
			}
			for field, want := range tc.want {
				if got[field] != want {
					t.Errorf("%s %q, want its hash %q: %s", field, got[field], want, lines[before])
				}
			}
		})
	}
}

// fileLines returns the whole lines of the file at path (a line being
// written is not one yet), none when it is not there yet.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(b)) {
		if strings.HasSuffix(line, "\n") {
			lines = append(lines, line)
		}
	}
	return lines
}
