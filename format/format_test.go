package format

import "testing"

func TestLooksLikeHTML(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{"<!DOCTYPE html><html>", true},
		{"\n  <html><body>Index of /x", true},
		{"<pre><a href=\"../\">../</a>", true},
		{"II*\x00", false},
		{"{\"zarr_format\": 2}", false},
		{"", false},
		{"<?xml version=\"1.0\"?><OME", false},
	} {
		if got := looksLikeHTML([]byte(tc.head)); got != tc.want {
			t.Errorf("looksLikeHTML(%q) = %v", tc.head, got)
		}
	}
}
