package bearer

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// FuzzParsePublicKeyFile: a public_key_file of any bytes is read without
// a panic; a file that loads holds as many PEM blocks as keys, each a
// PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE whose key checkKey accepts,
// with no kid and no alg; a file with a private key block (any type
// that says PRIVATE KEY) never loads, and no error names what a block
// holds (its base64), only its type and the file's path. A file of the
// edge's own public keys, in any choice and order and in each form (PKIX,
// PKCS #1 for RSA, a certificate), with text between the blocks, loads
// as those keys in that order; with a private key after them it does
// not.
func FuzzParsePublicKeyFile(f *testing.F) {
	const path = "/etc/ucwa/keys.pem"
	k := testkit.Keys(f)
	signers := []crypto.Signer{k.RSA, k.RSA2, k.EC, k.EC384, k.Ed}
	var blocks []*pem.Block
	var public []crypto.PublicKey
	for _, s := range signers {
		der, err := x509.MarshalPKIXPublicKey(s.Public())
		if err != nil {
			f.Fatal(err)
		}
		blocks = append(blocks, &pem.Block{Type: "PUBLIC KEY", Bytes: der})
		public = append(public, s.Public())
	}
	blocks = append(blocks, &pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.RSA2.PublicKey)})
	public = append(public, k.RSA2.Public())
	template := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sts.contoso.com"},
		NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_900_000_000, 0)}
	cert, err := x509.CreateCertificate(rand.Reader, template, template, k.EC.Public(), k.EC)
	if err != nil {
		f.Fatal(err)
	}
	blocks = append(blocks, &pem.Block{Type: "CERTIFICATE", Bytes: cert})
	public = append(public, k.EC.Public())
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k.EC)
	if err != nil {
		f.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(k.EC384)
	if err != nil {
		f.Fatal(err)
	}
	private := []*pem.Block{{Type: "PRIVATE KEY", Bytes: pkcs8}, {Type: "EC PRIVATE KEY", Bytes: sec1},
		{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.RSA)}}

	for _, seed := range [][]byte{
		pem.EncodeToMemory(blocks[0]),
		append(pem.EncodeToMemory(blocks[2]), pem.EncodeToMemory(blocks[6])...),
		pem.EncodeToMemory(private[0]),
		append(pem.EncodeToMemory(blocks[4]), pem.EncodeToMemory(private[2])...),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: blocks[0].Bytes}),
		pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")}),
		[]byte("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"),
		[]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"),
		nil,
	} {
		f.Add(seed, uint8(0), uint16(0))
	}
	f.Add([]byte("# the STS's keys"), uint8(0x7f), uint16(0x1234))
	f.Fuzz(func(t *testing.T, data []byte, choice uint8, order uint16) {
		check := func(data []byte) ([]verificationKey, error) {
			t.Helper()
			keys, err := parsePublicKeyFile(path, data)
			var found []*pem.Block
			for rest := data; ; {
				var block *pem.Block
				if block, rest = pem.Decode(rest); block == nil {
					break
				}
				found = append(found, block)
			}
			if err != nil {
				msg := err.Error()
				if !strings.HasPrefix(msg, "public_key_file "+path+": ") {
					t.Fatalf("%q: error %q", data, msg)
				}
				for _, b := range found {
					if body := base64.StdEncoding.EncodeToString(b.Bytes); len(body) >= 16 && strings.Contains(msg, body[:16]) {
						t.Fatalf("%q: error %q shows a block's bytes", data, msg)
					}
				}
				return nil, err
			}
			if len(keys) == 0 || len(keys) != len(found) {
				t.Fatalf("%q: %d keys of %d blocks", data, len(keys), len(found))
			}
			for i, key := range keys {
				switch found[i].Type {
				case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
				default:
					t.Fatalf("%q: a key of a %s block", data, found[i].Type)
				}
				if key.id != "" || key.alg != "" || checkKey(key.key) != nil {
					t.Fatalf("%q: key %+v (%v)", data, key, checkKey(key.key))
				}
			}
			return keys, nil
		}
		check(data)

		// The edge's own keys, chosen and ordered by the fuzzer.
		var file bytes.Buffer
		var want []verificationKey
		for i := range blocks {
			j := (i + int(order)) % len(blocks)
			if choice&(1<<j) == 0 { // seven blocks
				continue
			}
			file.WriteString("# key " + blocks[j].Type + "\n")
			file.Write(pem.EncodeToMemory(blocks[j]))
			want = append(want, verificationKey{key: public[j]})
		}
		if len(want) == 0 {
			return
		}
		keys, err := check(file.Bytes())
		if err != nil || !sameKeys(keys, want) {
			t.Fatalf("%q: %d keys, %v; want %d", file.Bytes(), len(keys), err, len(want))
		}
		file.Write(pem.EncodeToMemory(private[int(order>>8)%len(private)]))
		if keys, err := check(file.Bytes()); err == nil || !strings.Contains(err.Error(), "private key") {
			t.Fatalf("%q with a private key: %d keys, %v", file.Bytes(), len(keys), err)
		}
	})
}
