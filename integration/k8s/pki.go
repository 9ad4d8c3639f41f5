package k8s

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a test cluster's certificates, all under Dir: a CA, the API
// server's serving certificate (127.0.0.1 and localhost), one client
// certificate in system:masters that every component and kubectl use, and
// the service-account signing key.
type PKI struct {
	Dir string
	// TLS is a client configuration trusting the CA and presenting the
	// client certificate.
	TLS *tls.Config
}

// Path names one of the PKI's files: ca.crt, server.crt/.key,
// client.crt/.key, sa.key.
func (p *PKI) Path(name string) string { return filepath.Join(p.Dir, name) }

// NewPKI writes a fresh PKI into dir, valid for a day.
func NewPKI(dir string) (*PKI, error) {
	p := &PKI{Dir: dir}
	caKey, err := p.key("ca.key")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ward-k8s-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if err := p.write("ca.crt", "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leaf := func(name string, serial int64, tmpl *x509.Certificate) (tls.Certificate, error) {
		k, err := p.key(name + ".key")
		if err != nil {
			return tls.Certificate{}, err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%s certificate: %w", name, err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, p.write(name+".crt", "CERTIFICATE", der)
	}
	if _, err := leaf("server", 2, &x509.Certificate{Subject: pkix.Name{CommonName: "kube-apiserver"},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default.svc"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, err
	}
	client, err := leaf("client", 3, &x509.Certificate{Subject: pkix.Name{CommonName: "ward-test", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, err
	}
	if _, err := p.key("sa.key"); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	p.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{client}}
	return p, nil
}

func (p *PKI) key(name string) (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return k, p.write(name, "EC PRIVATE KEY", der)
}

func (p *PKI) write(name, typ string, der []byte) error {
	if err := os.WriteFile(p.Path(name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
