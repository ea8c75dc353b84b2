package transfer

import (
	"encoding/json"
	"io"
	"sync"
)

// JSONLines returns an Events callback that writes each event as one JSON
// line to w, for logs and CI. Write errors are ignored: progress must never
// stop a download.
func JSONLines(w io.Writer) func(Event) {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
	}
}
