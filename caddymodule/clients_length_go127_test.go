//go:build go1.27

package caddymodule

// h2ServerResetsMalformedLength: Go 1.27's HTTP/2 server resets a stream
// whose HEADERS end it with a content-length other than 0, or carry two
// content-length fields of different values (PROTOCOL_ERROR, RFC 9113
// 8.1.1), before any handler sees it; Go 1.26's passes them on. Told by
// the release's build tag, which a development or GOEXPERIMENT build of
// Go 1.27 has too, whatever runtime.Version says.
const h2ServerResetsMalformedLength = true
