package format

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// ASCIIJSON returns JSON text b with every non-ASCII character written as a
// \uXXXX escape (a surrogate pair above U+FFFF). The text means the same,
// but zarr-python 2 decodes .zarray, .zattrs and N5 attributes.json as
// ASCII and cannot open metadata holding, say, a unit of "µm" or a source
// path with an accent in raw UTF-8. Outside strings valid JSON is ASCII
// already, so the escapes land only inside strings. b must be valid UTF-8,
// as encoding/json writes it.
func ASCIIJSON(b []byte) []byte {
	n := 0
	for _, c := range b {
		if c >= utf8.RuneSelf {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+5*n)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r < utf8.RuneSelf:
			out = append(out, b[0])
		case r > 0xFFFF:
			hi, lo := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		b = b[size:]
	}
	return out
}
