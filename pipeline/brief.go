package pipeline

// MaxLine is the longest error line the CLI prints for one failure; the full
// text stays in catalog.json and the --json report.
const MaxLine = 200

// clip keeps a line within MaxLine characters, cutting the middle (the start
// names what failed, the end says why).
func clip(s string) string {
	r := []rune(s)
	if len(r) <= MaxLine {
		return s
	}
	const tail = 120
	return string(r[:MaxLine-tail-1]) + "…" + string(r[len(r)-tail:])
}

// ErrorLine is the line the CLI prints for one failure: "imgdataset: " and
// msg, at most MaxLine characters.
func ErrorLine(msg string) string { return clip("imgdataset: " + msg) }

// Count says n things in English: "1 dataset", "5 datasets".
func Count(n int, thing string) string { return count(n, thing) }
