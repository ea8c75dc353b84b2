package pipeline

import (
	"strings"
	"unicode/utf8"
)

// MaxLine is the longest error line the CLI prints for one failure; the full
// text stays in catalog.json and the --json report.
const MaxLine = 200

// clip keeps a line within MaxLine characters by leaving out its middle:
// the start names what failed, the end says why. It leaves out whole layers
// (the parts between ": ") where it can, so no URL is cut, else words.
func clip(s string) string {
	if runeLen(s) <= MaxLine {
		return s
	}
	const gap = ": …: "
	segs := strings.Split(s, ": ")
	lo, hi := 1, len(segs)
	size := func() int {
		return runeLen(strings.Join(segs[:lo], ": ")) + runeLen(gap) + runeLen(strings.Join(segs[hi:], ": "))
	}
	// What failed: the first layers, up to a third of the line; then the
	// cause: as many layers from the end as fit; then more of the start.
	for lo < hi-1 && runeLen(strings.Join(segs[:lo+1], ": ")) <= MaxLine/3 {
		lo++
	}
	for hi > lo {
		hi--
		if size() > MaxLine {
			hi++
			break
		}
	}
	if hi < len(segs) {
		for lo < hi {
			lo++
			if size() > MaxLine {
				lo--
				break
			}
		}
		if lo < hi {
			return strings.Join(segs[:lo], ": ") + gap + strings.Join(segs[hi:], ": ")
		}
	}
	return clipWords(s)
}

// clipWords cuts the middle of s between words where it can.
func clipWords(s string) string {
	r := []rune(s)
	const tail = 120
	head, from := MaxLine-tail-3, len(r)-tail
	for i := head; i > head-30 && i > 0; i-- {
		if r[i] == ' ' {
			head = i
			break
		}
	}
	for i := from; i < from+30 && i < len(r); i++ {
		if r[i] == ' ' {
			from = i + 1
			break
		}
	}
	return string(r[:head]) + " … " + string(r[from:])
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// ErrorLine is the line the CLI prints for one failure: "imgdataset: " and
// msg, at most MaxLine characters.
func ErrorLine(msg string) string { return clip("imgdataset: " + msg) }

// Count says n things in English: "1 dataset", "5 datasets".
func Count(n int, thing string) string { return count(n, thing) }
