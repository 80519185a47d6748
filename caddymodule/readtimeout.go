package caddymodule

import (
	"errors"
	"net"
	"net/http"
	"os"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// errBodyTimeout answers a request whose body did not arrive before the
// server's read deadline (the server's read_body timeout, or its
// read_body_idle timeout for a body that stalls): 408 ClientTimeout. The
// server closes the connection after the answer, and nothing reaches a
// pool.
var errBodyTimeout = ucwa.NewError(http.StatusRequestTimeout, "",
	"The body did not arrive completely before the server's read timeout.")

// isReadTimeout reports whether a body read failed because the
// connection's read deadline passed.
func isReadTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
