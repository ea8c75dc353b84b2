package store_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/imgdataset/imgdataset/store"
)

func TestRedirectAllowed(t *testing.T) {
	tests := []struct {
		startPrivate bool
		to           string
		ok           bool
	}{
		{false, "https://other.example/x", true},
		{false, "http://127.0.0.1:8080/x", false},
		{false, "http://[::1]/x", false},
		{false, "http://169.254.169.254/latest/meta-data/", false},
		{false, "http://10.1.2.3/x", false},
		{false, "http://192.168.0.1/x", false},
		{false, "http://100.64.0.1/x", false},
		{false, "http://[fe80::1]/x", false},
		{false, "http://[::ffff:127.0.0.1]/x", false},
		{false, "http://localhost:9000/x", false},
		{false, "http://a.localhost/x", false},
		{false, "http://0.0.0.0/x", false},
		{false, "http://8.8.8.8/x", true},
		{false, "ftp://other.example/x", false},
		{false, "file:///etc/passwd", false},
		{true, "http://127.0.0.1:8080/x", true},
		{true, "http://169.254.169.254/x", true},
		{true, "https://other.example/x", true},
		{true, "gopher://127.0.0.1/x", false},
	}
	g := &store.NetGuard{}
	for _, tc := range tests {
		u, err := url.Parse(tc.to)
		if err != nil {
			t.Fatal(err)
		}
		err = g.RedirectAllowed(tc.startPrivate, u)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, store.ErrRedirectRefused)) {
			t.Errorf("start private %v → %s: %v, want allowed %v", tc.startPrivate, tc.to, err, tc.ok)
		}
	}
}

// TestRedirectGuardDNS: a "public" server (127.0.0.2, which the guard is told
// to take for a public address) redirects a download to a name that resolves
// to a private address (127.0.0.1, standing for a cloud metadata server).
// The URL looks harmless; the dialer refuses the address. A redirect by
// private IP literal is refused before any dial, and a chain that starts at a
// private address may go anywhere.
func TestRedirectGuardDNS(t *testing.T) {
	lpub, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("skipping: cannot listen on 127.0.0.2 (%v)", err)
	}
	var secretHits atomic.Int64
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secretHits.Add(1)
		io.WriteString(w, "credentials")
	}))
	defer secret.Close()
	_, secretPort, _ := net.SplitHostPort(secret.Listener.Addr().String())
	pub := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/by-name":
			http.Redirect(w, r, "http://metadata.test:"+secretPort+"/", http.StatusFound)
		case "/by-ip":
			http.Redirect(w, r, "http://127.0.0.1:"+secretPort+"/", http.StatusFound)
		default:
			io.WriteString(w, "public")
		}
	}))
	pub.Listener = lpub
	pub.Start()
	defer pub.Close()
	_, pubPort, _ := net.SplitHostPort(lpub.Addr().String())

	g := &store.NetGuard{Private: func(a netip.Addr) bool { return a != netip.MustParseAddr("127.0.0.2") }}
	hosts := map[string]string{"public.test": "127.0.0.2", "metadata.test": "127.0.0.1"}
	dialer := &net.Dialer{ControlContext: g.Control}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip, ok := hosts[h]; ok {
			addr = net.JoinHostPort(ip, p) // the test's DNS
		}
		return dialer.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: g.CheckRedirect}
	ctx := context.Background()
	read := func(root, key string) (string, error) {
		d, err := store.NewHTTP(client, root)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := store.New(d).ReadRange(ctx, key, 0, -1)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), err
	}
	for _, key := range []string{"by-name", "by-ip"} {
		if body, err := read("http://public.test:"+pubPort+"/", key); !errors.Is(err, store.ErrRedirectRefused) {
			t.Errorf("%s: %q, %v; want ErrRedirectRefused", key, body, err)
		}
	}
	if n := secretHits.Load(); n != 0 {
		t.Errorf("the private server got %d requests", n)
	}
	// Not redirected: a public server is read as usual.
	if body, err := read("http://public.test:"+pubPort+"/", "plain"); err != nil || body != "public" {
		t.Errorf("plain public read: %q, %v", body, err)
	}
	// A chain that starts at a private address may be redirected to another.
	if body, err := read("http://metadata.test:"+secretPort+"/", ""); err != nil || body != "credentials" {
		t.Errorf("private start: %q, %v", body, err)
	}
	// The private server now has an idle keep-alive connection, which a
	// redirected request must not reuse either: no dial would check it.
	hits := secretHits.Load()
	if body, err := read("http://public.test:"+pubPort+"/", "by-name"); !errors.Is(err, store.ErrRedirectRefused) || secretHits.Load() != hits {
		t.Errorf("by-name with an idle connection to the private server: %q, %v, %d new requests there", body, err, secretHits.Load()-hits)
	}
	loop := httptest.NewServer(http.RedirectHandler("http://metadata.test:"+secretPort+"/", http.StatusFound))
	defer loop.Close()
	if body, err := read(loop.URL+"/", "x"); err != nil || body != "credentials" {
		t.Errorf("loopback to loopback redirect: %q, %v", body, err)
	}
}
