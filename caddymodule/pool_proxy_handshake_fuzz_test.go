package caddymodule

import "testing"

// FuzzSOCKSReply: socksReply finds the end of a SOCKS5 proxy's side of
// the handshake (method, authentication status, CONNECT reply with each
// address type) however its bytes are split into reads, at the last one
// and at no read before; bytes of no handshake never make it panic.
func FuzzSOCKSReply(f *testing.F) {
	f.Add(false, byte(1), byte(0), []byte{1, 3})
	f.Add(true, byte(3), byte(9), []byte{2, 2, 2, 2})
	f.Add(true, byte(4), byte(0), []byte{})
	f.Add(false, byte(3), byte(0), []byte{0, 0, 7})
	f.Fuzz(func(t *testing.T, auth bool, addrType, nameLen byte, cuts []byte) {
		msg := []byte{0x05, 0x00}
		if auth {
			msg = append(msg[:1], socksUsernamePassword, 0x01, 0x00)
		}
		var addr []byte
		switch addrType % 3 {
		case 0:
			addrType, addr = 0x01, make([]byte, 4)
		case 1:
			addrType, addr = 0x04, make([]byte, 16)
		default:
			addrType, addr = 0x03, append([]byte{nameLen}, make([]byte, nameLen)...)
		}
		msg = append(append(append(msg, 0x05, 0x00, 0x00, addrType), addr...), 0x12, 0x34)

		var s socksReply
		rest := msg
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) && int(cuts[i]) < n {
				n = int(cuts[i])
			}
			ended := s.ends(rest[:n])
			rest = rest[n:]
			if ended != (len(rest) == 0) {
				t.Fatalf("% x split at %v: ended %v with %d bytes left", msg, cuts, ended, len(rest))
			}
		}

		var raw socksReply
		raw.ends(cuts)
		raw.ends(msg)
	})
}
