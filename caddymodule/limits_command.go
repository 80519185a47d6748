package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "ucwa-limit",
		Usage: "list | show|reset --limit <name> (--key <value> | --client-ip <address>) [--config <path> [--adapter <name>]] [--address <interface>]",
		Short: "Lists the ucwa velocity limits, or shows or resets a caller's budget of one",
		Long: `
Lists the velocity limits of the running Caddy's ucwa handlers, or shows
what a caller has left of one, or makes it whole again, through the
admin API's /ucwa/limits, /ucwa/limits/show and /ucwa/limits/reset
endpoints, and prints their JSON answer.

--key is the value the limit's key expands to for the caller; for the
default key, the token's tid, a slash and its oid (else its sub), as the
audit trail's caller shows them. --client-ip names the budget of a client
address instead, taken when the key expanded to nothing.

It requires that the admin API is enabled and accessible. The address of
the request can be given with --address, or read from the given --config,
if not the default.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringP("limit", "l", "", "The name of the limit")
			cmd.Flags().StringP("key", "k", "", "The value the limit's key expands to for the caller")
			cmd.Flags().StringP("client-ip", "", "", "The client address whose budget to show or reset, instead of --key")
			cmd.Flags().StringP("config", "c", "", "Configuration file to use to parse the admin address, if --address is not used")
			cmd.Flags().StringP("adapter", "a", "", "Name of config adapter to apply (when --config is used)")
			cmd.Flags().StringP("address", "", "", "The address to use to reach the admin API endpoint, if not the default")
			cmd.ValidArgs = []string{"list", "show", "reset"}
			cmd.Args = cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				return caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
					return cmdLimit(args[0], fl)
				})(cmd, args)
			}
		},
	})
}

// cmdLimit gets the admin API's /ucwa/limits (list), or posts the flags'
// limit and key or client address to its /ucwa/limits/<action>, and
// copies its answer to stdout.
func cmdLimit(action string, fl caddycmd.Flags) (int, error) {
	method, path, body := http.MethodGet, "/ucwa/limits", io.Reader(nil)
	if action == "list" {
		if fl.Changed("limit") || fl.Changed("key") || fl.Changed("client-ip") {
			return caddy.ExitCodeFailedStartup, errors.New("list takes no --limit, --key or --client-ip")
		}
	} else {
		req := limitAdminRequest{Limit: fl.String("limit"), ClientIP: fl.String("client-ip")}
		if fl.Changed("key") {
			key := fl.String("key")
			req.Key = &key
		}
		b, _ := json.Marshal(req) // strings alone: it cannot fail
		method, path, body = http.MethodPost, path+"/"+action, bytes.NewReader(b)
	}
	adminAddr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("couldn't determine admin API address: %v", err)
	}
	// The admin endpoint's error (4xx, 5xx) comes back as err, its message
	// and Caddy's error body in it.
	resp, err := caddycmd.AdminAPIRequest(adminAddr, method, path, nil, body)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}
