package format

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/imgdataset/imgdataset/store"
)

// When nothing recognises an object, the error says why in words a person can
// act on, and still wraps ErrUnknown (and store.ErrNotExist when it is gone).
func TestUnknownSaysWhy(t *testing.T) {
	m := store.NewMem()
	for k, v := range map[string]string{"zero.tif": "", "notes.txt": "hello", "folder/a.txt": "x"} {
		if err := m.Put(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	st := store.New(m)
	r := NewRegistry() // no formats: everything is unknown
	for _, c := range []struct {
		key, want string
		notExist  bool
	}{
		{"zero.tif", "empty file (0 bytes)", false},
		{"notes.txt", `"notes.txt": unknown format`, false},
		{"folder/", "a folder no format recognises", false},
		{"nothing/", "empty folder", false},
		{"gone.tif", "does not exist", true},
	} {
		_, err := r.Detect(context.Background(), st, c.key)
		if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrUnknown saying %q", c.key, err, c.want)
		}
		if errors.Is(err, store.ErrNotExist) != c.notExist {
			t.Errorf("%s: %v; wraps store.ErrNotExist = %v, want %v", c.key, err, !c.notExist, c.notExist)
		}
	}
}
