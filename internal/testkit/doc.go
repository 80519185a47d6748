// Package testkit is the test support of caddy-ucwa, shared by the tests
// of every package so that no helper is written twice:
//
//   - an in-process Caddy loaded with caddy.Load on reserved loopback
//     ports, with admin off (or on a port of its own), no persisted config
//     and no automatic HTTPS, and its logs captured per test and shown
//     only when the test fails (Start);
//   - Caddy child processes, this test binary run again as Caddy, that a
//     test can kill and restart (Main, StartCaddyProcess);
//   - loopback servers: an upstream that records what it receives, and
//     front-end pools that answer, hang, reset or go down (NewUpstream,
//     NewPool);
//   - bearer tokens: key pairs of every family, signed tokens, JWK Sets
//     and an identity provider that serves them (Keys, Mint, NewJWKSServer);
//   - a fake clock, HTTP request helpers, a client's reading of a
//     multipart/batching answer (ReadBatch), and ports reserved for the
//     whole test so that no other process can take them (Port).
//
// Tests that start the in-process Caddy cannot run in parallel with one
// another: Caddy runs one configuration per process.
package testkit
