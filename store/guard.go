package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
)

// This file holds the redirect rule of the store's HTTP client: a public
// server must not send a download to a private address (loopback, private
// networks, link-local cloud metadata), neither by the URL of a redirect nor
// by a DNS name that resolves to one.

// ErrRedirectRefused is wrapped by redirects the NetGuard refuses.
var ErrRedirectRefused = errors.New("redirect refused")

// NetGuard enforces the redirect rule: redirects go to http(s) only, and a
// request chain that started at a public address never reaches a private
// one; a chain that started at a private address (a mirror on loopback, a
// lab server) may go anywhere. Install CheckRedirect as the client's
// CheckRedirect and Control as the ControlContext of the transport's dialer:
// the first looks at the URLs, the second at the addresses actually dialed,
// so a public name resolving to 169.254.169.254 is caught too. The start of a
// chain is known for requests sent by the store drivers (see guardRequest);
// for other requests only the URLs are checked.
type NetGuard struct {
	// Private reports whether an address is off limits to chains that start
	// at a public one; nil selects IsPrivateAddr.
	Private func(netip.Addr) bool
}

// IsPrivateAddr reports loopback, private (RFC 1918, RFC 4193), link-local,
// unspecified and CGNAT addresses.
func IsPrivateAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsInterfaceLocalMulticast() || cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func (g *NetGuard) private(a netip.Addr) bool {
	if g != nil && g.Private != nil {
		return g.Private(a.Unmap())
	}
	return IsPrivateAddr(a)
}

// hostPrivate classifies a URL host by its spelling: an IP literal by its
// address, "localhost" and its subdomains as loopback; other names are
// unknown until dialed (ok false).
func (g *NetGuard) hostPrivate(host string) (private, ok bool) {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true, true
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return g.private(a), true
	}
	return false, false
}

// RedirectAllowed is the URL part of the rule: to must be http(s), and it may
// name a private host only when the chain started at one. startPrivate is
// what is known of the start: its first connection's address when the
// request came through a store driver, else its URL.
func (g *NetGuard) RedirectAllowed(startPrivate bool, to *url.URL) error {
	if to.Scheme != "http" && to.Scheme != "https" {
		return fmt.Errorf("redirect to %s: scheme %q is not http(s): %w", to.Redacted(), to.Scheme, ErrRedirectRefused)
	}
	if startPrivate {
		return nil
	}
	if p, ok := g.hostPrivate(to.Hostname()); ok && p {
		return fmt.Errorf("redirect from a public address to private host %s: %w", to.Host, ErrRedirectRefused)
	}
	return nil
}

// CheckRedirect is an http.Client CheckRedirect: at most 10 redirects, and
// RedirectAllowed.
func (g *NetGuard) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("stopped after 10 redirects at %s", req.URL.Redacted())
	}
	startPrivate := false
	if c := chainFrom(req.Context()); c != nil {
		startPrivate = c.redirect(g)
	} else if p, ok := g.hostPrivate(via[0].URL.Hostname()); ok {
		startPrivate = p
	}
	return g.RedirectAllowed(startPrivate, req.URL)
}

// Control is a net.Dialer ControlContext: it refuses a connection to a
// private address for a redirected chain that started at a public one.
func (g *NetGuard) Control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	c := chainFrom(ctx)
	if c == nil || !c.publicRedirected() {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	if g.private(ap.Addr()) {
		return fmt.Errorf("dial %s: redirect from a public address to a private one: %w", address, ErrRedirectRefused)
	}
	return nil
}

// chain is the state of one request and its redirects: the address of its
// first connection, and whether it has been redirected.
type chain struct {
	mu         sync.Mutex
	first      netip.Addr
	redirected bool
	startPriv  bool
	private    func(netip.Addr) bool // the guard's, once redirected
	refused    error                 // why a reused connection was closed
}

type chainKey struct{}

func chainFrom(ctx context.Context) *chain {
	c, _ := ctx.Value(chainKey{}).(*chain)
	return c
}

// guardRequest gives ctx a chain that learns the address of the request's
// first connection (new or reused), which NetGuard then holds redirects to.
// A redirected request handed a kept-alive connection to a private address
// (no dial, so no Control) gets it closed before anything is written: the
// transport then dials afresh, which Control refuses, or fails.
func guardRequest(ctx context.Context) context.Context {
	c := &chain{}
	ctx = context.WithValue(ctx, chainKey{}, c)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			ta, ok := info.Conn.RemoteAddr().(*net.TCPAddr)
			if !ok {
				return
			}
			a := ta.AddrPort().Addr().Unmap()
			c.mu.Lock()
			defer c.mu.Unlock()
			if !c.first.IsValid() {
				c.first = a
				return
			}
			if c.redirected && !c.startPriv && c.private(a) {
				c.refused = fmt.Errorf("connection to %s: redirect from a public address to a private one: %w", a, ErrRedirectRefused)
				info.Conn.Close()
			}
		},
	})
}

// wrapRefused adds to err why the chain of ctx closed a connection, if it did.
func wrapRefused(ctx context.Context, err error) error {
	c := chainFrom(ctx)
	if err == nil || c == nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused != nil && !errors.Is(err, ErrRedirectRefused) {
		return fmt.Errorf("%w (%w)", c.refused, err)
	}
	return err
}

// redirect marks the chain redirected and says whether it started private.
// A start whose address was never seen counts as public.
func (c *chain) redirect(g *NetGuard) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.redirected {
		c.redirected = true
		c.startPriv = c.first.IsValid() && g.private(c.first)
		c.private = g.private
	}
	return c.startPriv
}

func (c *chain) publicRedirected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.redirected && !c.startPriv
}
