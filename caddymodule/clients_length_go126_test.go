//go:build !go1.27

package caddymodule

// h2ServerResetsMalformedLength: see clients_length_go127_test.go.
const h2ServerResetsMalformedLength = false
