package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse/test/redistest"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// goTool builds a tool of go.mod's tool directive (fetched from the Go
// module proxy) and runs it until the test ends.
func goTool(t *testing.T, env []string, pkg string, args ...string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(pkg), out.String())
		}
	})
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pebble is a running Pebble (Let's Encrypt's test CA) whose DNS resolves
// every name to loopback and whose validation reaches the given ports.
type pebble struct {
	dir, minica string
	acmePort    int
	mgmtPort    int
}

func startPebble(t *testing.T, httpPort, tlsPort int) *pebble {
	t.Helper()
	dir := t.TempDir()
	dnsPort := freePort(t)
	goTool(t, nil, "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv", "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-management", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	src := strings.TrimSpace(cmdOutput(t, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2"))
	p := &pebble{dir: dir, minica: filepath.Join(src, "test", "certs", "pebble.minica.pem"), acmePort: freePort(t), mgmtPort: freePort(t)}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", p.acmePort),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", p.mgmtPort),
		"certificate":             filepath.Join(src, "test", "certs", "localhost", "cert.pem"),
		"privateKey":              filepath.Join(src, "test", "certs", "localhost", "key.pem"),
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"keyAlgorithm":            "ecdsa",
		// Certificates that live 30 seconds, so that a test sees a renewal.
		"profiles": map[string]any{"default": map[string]any{"description": "test", "validityPeriod": 30}},
	}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "pebble.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	goTool(t, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		"github.com/letsencrypt/pebble/v2/cmd/pebble", "-config", filepath.Join(dir, "pebble.json"),
		"-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", p.acmePort))
	return p
}

// acmeGatehouse serves gatehouse with ACME from p on the given ports;
// extra is appended to the tls.acme section (then to the file).
func acmeGatehouse(t *testing.T, p *pebble, domain string, httpsPort, redirectPort int, acmeExtra, extra string) {
	t.Helper()
	conf := strings.Replace(goodConfig, "base_url: https://app.example.test", fmt.Sprintf("base_url: https://%s:%d", domain, httpsPort), 1) +
		fmt.Sprintf(`listen: 127.0.0.1:%d
tls:
  redirect_listen: 127.0.0.1:%d
  acme:
    domains: [%s]
    email: ops@example.test
    ca: https://127.0.0.1:%d/dir
    ca_root_file: %s
    storage_dir: $DIR/acme
    renew_check_interval: 1s
`, httpsPort, redirectPort, domain, p.acmePort, p.minica) + acmeExtra + extra
	serveInBackground(t, conf)
}

// serveInBackground runs `serve` with the config until the test ends.
func serveInBackground(t *testing.T, conf string) {
	t.Helper()
	f, err := loadConfig(writeConfig(t, conf))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.prepare(os.Getenv); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, f, zap.NewNop(), nil) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	})
}

// servedChain is the certificate chain served on port for domain, or nil.
func servedChain(port int, domain string) []*x509.Certificate {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
		&tls.Config{ServerName: domain, InsecureSkipVerify: true})
	if err != nil {
		return nil
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates
}

func waitChain(t *testing.T, port int, domain string) []*x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if chain := servedChain(port, domain); chain != nil {
			return chain
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate served on %d within 90s", port)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestACMEWithPebble: gatehouse obtains certificates from Pebble, run from
// the Go module proxy, for names Pebble's DNS resolves to loopback: over
// HTTP-01 alone and TLS-ALPN-01 alone. It serves them, renews them before
// they expire, and redirects plain HTTP to its base URL. Two replicas on
// one Redis share a single certificate.
func TestACMEWithPebble(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	// Pebble validates on these two ports, which the subtests take in turn.
	httpsPort, redirectPort := freePort(t), freePort(t)
	p := startPebble(t, redirectPort, httpsPort)
	root := fetchPebbleRoot(t, p.mgmtPort, p.minica)

	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			domain := strings.ReplaceAll(challenge, "-", "") + ".gatehouse.test"
			acmeGatehouse(t, p, domain, httpsPort, redirectPort, fmt.Sprintf("    challenges: [%s]\n", challenge), "")
			chain := waitChain(t, httpsPort, domain)
			first := chain[0]
			inter := x509.NewCertPool()
			for _, c := range chain[1:] {
				inter.AddCert(c)
			}
			if _, err := first.Verify(x509.VerifyOptions{DNSName: domain, Roots: root, Intermediates: inter}); err != nil {
				t.Errorf("the served certificate does not verify for %s with Pebble's root: %v", domain, err)
			}

			// Renewed before its 30 seconds run out.
			deadline := time.Now().Add(60 * time.Second)
			for {
				if chain := servedChain(httpsPort, domain); chain != nil && chain[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
					if c := chain[0]; !c.NotAfter.After(first.NotAfter) {
						t.Errorf("the renewed certificate expires %v, not after %v", c.NotAfter, first.NotAfter)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the certificate was not renewed within 60s")
				}
				time.Sleep(500 * time.Millisecond)
			}

			// Plain HTTP is sent to the base URL, whatever Host it names.
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/wiki?page=1", redirectPort), nil)
			req.Host = "evil.example.test"
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := fmt.Sprintf("https://%s:%d/wiki?page=1", domain, httpsPort); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
				t.Errorf("plain HTTP: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
			}
		})
	}

	// Replicas on one Redis: B listens where Pebble cannot reach it, yet
	// both end up serving the same certificate, whichever of them took the
	// lock and asked for it (A answers the challenge from the shared
	// storage when B solves).
	t.Run("replicas", func(t *testing.T) {
		srv := redistest.Start(t)
		t.Setenv("TEST_REDIS_URL", "redis://"+srv.Addr+"/0")
		const domain = "replicas.gatehouse.test"
		state := "state:\n  redis:\n    url: ${TEST_REDIS_URL}\n"
		bHTTPS, bRedirect := freePort(t), freePort(t)
		acmeGatehouse(t, p, domain, httpsPort, redirectPort, "", state)
		acmeGatehouse(t, p, domain, bHTTPS, bRedirect, "", state)
		a, b := waitChain(t, httpsPort, domain)[0], waitChain(t, bHTTPS, domain)[0]
		// A renewal may land between the two reads; they agree again once
		// both have loaded it from Redis.
		deadline := time.Now().Add(30 * time.Second)
		for a.SerialNumber.Cmp(b.SerialNumber) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the replicas serve different certificates: %x and %x", a.SerialNumber, b.SerialNumber)
			}
			time.Sleep(500 * time.Millisecond)
			a, b = waitChain(t, httpsPort, domain)[0], waitChain(t, bHTTPS, domain)[0]
		}
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer rdb.Close()
		keys, err := rdb.Keys(context.Background(), "gatehouse:certmagic:data:certificates/*").Result()
		if err != nil || len(keys) == 0 {
			t.Errorf("no certificate in Redis: %q, %v", keys, err)
		}
	})
}

func cmdOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

// fetchPebbleRoot reads the root Pebble signs with from its management
// API (served with the minica certificate).
func fetchPebbleRoot(t *testing.T, mgmtPort int, minica string) *x509.CertPool {
	t.Helper()
	ca, _ := os.ReadFile(minica)
	trust := x509.NewCertPool()
	trust.AppendCertsFromPEM(ca)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: trust}}, Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: %s", b)
	}
	return pool
}

// writeCertPair writes a self-signed certificate for app.example.test with
// the given serial, and its key, as tls.crt and tls.key in dir.
func writeCertPair(t *testing.T, dir string, serial int64) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "app.example.test"},
		DNSNames: []string{"app.example.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStaticCertificateTLS: a certificate file pair is served with the
// modern floor: TLS 1.3 and 1.2 with AEAD suites and HTTP/2; TLS 1.1 and
// CBC suites are refused.
func TestStaticCertificateTLS(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	dir := t.TempDir()
	writeCertPair(t, dir, 7)
	port := freePort(t)
	serveInBackground(t, goodConfig+fmt.Sprintf("listen: 127.0.0.1:%d\ntls:\n  cert_file: %s\n  key_file: %s\n",
		port, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")))
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", port))

	dial := func(c *tls.Config) (tls.ConnectionState, error) {
		c.ServerName, c.InsecureSkipVerify = "app.example.test", true
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), c)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.ConnectionState(), nil
	}
	if st, err := dial(&tls.Config{NextProtos: []string{"h2", "http/1.1"}}); err != nil || st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "h2" {
		t.Errorf("default client: version %x, protocol %q, %v", st.Version, st.NegotiatedProtocol, err)
	}
	if st, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12}); err != nil || st.Version != tls.VersionTLS12 {
		t.Errorf("TLS 1.2 client: %x, %v", st.Version, err)
	} else if st.PeerCertificates[0].SerialNumber.Int64() != 7 {
		t.Error("not the configured certificate")
	}
	if _, err := dial(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 handshake succeeded")
	}
	if _, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}); err == nil {
		t.Error("a CBC suite was accepted")
	}
}

// TestCertFilesReload: replaced files (a renewal, a Secret update) are
// picked up by the watch loop without a restart; a broken pair keeps the
// one in use. The loop runs on its own certFiles with a short checkEvery,
// the field serve leaves at certCheckEvery.
func TestCertFilesReload(t *testing.T) {
	dir := t.TempDir()
	writeCertPair(t, dir, 7)
	c, err := newCertFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if c.checkEvery != certCheckEvery {
		t.Errorf("newCertFiles: checkEvery = %v, want the default %v", c.checkEvery, certCheckEvery)
	}
	c.checkEvery = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.watch(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	serial := func() int64 {
		cert, err := c.getCertificate(nil)
		if err != nil || cert == nil {
			t.Fatalf("getCertificate: %v, %v", cert, err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.Int64()
	}
	if got := serial(); got != 7 {
		t.Fatalf("serial %d loaded, want 7", got)
	}
	writeCertPair(t, dir, 8)
	deadline := time.Now().Add(5 * time.Second)
	for serial() != 8 {
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate files were not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * c.checkEvery) // several checks
	if got := serial(); got != 8 {
		t.Errorf("after a broken key file the serial is %d, want 8 kept", got)
	}
}

// TestCertFilesWatchBadInterval: a zero or negative checkEvery falls back
// to the default instead of panicking in time.NewTicker.
func TestCertFilesWatchBadInterval(t *testing.T) {
	for _, every := range []time.Duration{0, -time.Second} {
		c := &certFiles{log: zap.NewNop(), checkEvery: every}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c.watch(ctx) // returns at once; panics without the fallback
	}
}
