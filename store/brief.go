package store

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// Brief is err as one line for a person: every layer that wrapped it named
// the URL or path it was working on, so the same URL can appear four times
// ("file U: stat U: http store: stat "k": U: HTTP 404"). Brief keeps each URL
// and path only where it is said last (next to the cause), drops a layer that
// is left saying what the next one says, writes Go's `Get "U"` as `GET U`,
// and folds newlines. errors.Is/As still work on the error itself; only its
// text is shortened.
func Brief(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		// net/http's own wording quotes the URL after the method in title case.
		s = strings.Replace(s, ue.Op+` "`+ue.URL+`"`, strings.ToUpper(ue.Op)+" "+ue.URL, 1)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		// "proxyconnect tcp: dial tcp 127.0.0.1:9: connect: connection
		// refused" says "connection refused" and, for a proxy, where.
		leaf := error(oe)
		for e := errors.Unwrap(leaf); e != nil; e = errors.Unwrap(e) {
			leaf = e
		}
		short := leaf.Error()
		if oe.Op == "proxyconnect" {
			// net/http puts the proxy's address on the dial inside.
			for e := error(oe); e != nil; e = errors.Unwrap(e) {
				if o, ok := e.(*net.OpError); ok && o.Addr != nil {
					short = "proxy " + o.Addr.String() + ": " + short
					break
				}
			}
		}
		s = strings.Replace(s, oe.Error(), short, 1)
	}
	return BriefText(s)
}

// BriefText is Brief on an error's text (a stored status or message).
func BriefText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	segs := strings.Split(s, ": ")
	// Walk from the cause outward, remembering the places already named.
	seen := map[string]bool{}
	keep := make([]string, 0, len(segs))
	for i := len(segs) - 1; i >= 0; i-- {
		words := strings.Fields(segs[i])
		out := words[:0:0]
		for _, w := range words {
			k := placeKey(w)
			if k != "" && seen[k] {
				continue
			}
			out = append(out, w)
		}
		for _, w := range words {
			if k := placeKey(w); k != "" {
				seen[k] = true
			}
		}
		seg := strings.Join(out, " ")
		seg = strings.ReplaceAll(seg, "()", "")
		seg = strings.ReplaceAll(seg, "( ", "(")
		seg = strings.TrimSpace(strings.ReplaceAll(seg, " )", ")"))
		if seg == "" || (len(keep) > 0 && seg == keep[len(keep)-1]) {
			continue
		}
		keep = append(keep, seg)
	}
	for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
		keep[i], keep[j] = keep[j], keep[i]
	}
	return strings.Join(keep, ": ")
}

// placeKey is the URL or path a word names ("" for other words), without
// the quotes and brackets around it, so `"a/b.tif"` and a/b.tif are one place.
func placeKey(w string) string {
	k := strings.Trim(w, `"'()[],;`)
	if strings.Contains(k, "://") || (strings.Contains(k, "/") && len(k) > 3) {
		return k
	}
	return ""
}
