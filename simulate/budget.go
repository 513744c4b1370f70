package simulate

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// CommentLimit is the default bound of a Markdown report meant for a
// pull-request comment: GitHub holds at most 65,536 characters in one, and
// the rest is room for the text a CI job adds around the report.
const CommentLimit = 60000

// mdSection is a section of a Markdown report whose items a budget may
// leave out: its heading (kept with its first item) and its items, each
// counting for size of unit, largest first.
type mdSection struct {
	heading string
	items   []mdItem
	unit    string
}

type mdItem struct {
	text string
	size int
}

// budgetNote and budgetSection bound the notes of a cut report: the one
// under the header (besides where the whole report is), and the line of
// each section that says what it left out (besides its heading, written
// when the section keeps no item).
const (
	budgetNote    = 300
	budgetSection = 60
)

// writeBudget writes head and the sections, whole when they fit in
// o.MaxChars (or it is 0); otherwise head, a note saying what was left out
// and where the whole report is, and, section by section, its first (the
// largest) items that fit, each cut section ending with what it left out. head is always
// written whole.
//
// kept says what a cut report keeps ("the largest groups of each
// section"), item what it counts ("group").
func writeBudget(w io.Writer, head string, secs []mdSection, o MarkdownOptions, kept, item string) error {
	var full strings.Builder
	full.WriteString(head)
	for _, s := range secs {
		full.WriteString(s.heading)
		for _, it := range s.items {
			full.WriteString(it.text)
		}
	}
	if o.MaxChars <= 0 || utf8.RuneCountInString(full.String()) <= o.MaxChars {
		return writeString(w, full.String())
	}
	where := o.FullReport
	if where == "" {
		where = "run the command with `-o FILE` to write it whole"
	}
	avail := o.MaxChars - utf8.RuneCountInString(head) - budgetNote - utf8.RuneCountInString(where)
	for _, s := range secs {
		avail -= utf8.RuneCountInString(s.heading) + budgetSection
	}
	var body strings.Builder
	leftItems, totalItems := 0, 0
	for _, s := range secs {
		totalItems += len(s.items)
		var part strings.Builder
		left, leftSize := 0, 0
		for _, it := range s.items {
			n := utf8.RuneCountInString(it.text)
			if left > 0 || n > avail {
				// Items come largest first: once one does not fit, the
				// rest of the section is left out, so what is kept is
				// the largest.
				left++
				leftSize += it.size
				continue
			}
			if part.Len() == 0 {
				part.WriteString(s.heading)
			}
			part.WriteString(it.text)
			avail -= n
		}
		if left > 0 {
			more := "more "
			if part.Len() == 0 {
				part.WriteString(s.heading)
				more = ""
			}
			fmt.Fprintf(&part, "- … %s (%s) left out here\n", count(left, more+item), count(leftSize, strings.TrimSuffix(s.unit, "s")))
		}
		leftItems += left
		body.WriteString(part.String())
	}
	note := fmt.Sprintf("\n> **Cut to fit a pull-request comment** (%s characters): the summary above is complete; below, %s, %s of %s left out. The whole report: %s.\n",
		thousands(o.MaxChars), kept, thousands(leftItems), count(totalItems, item), where)
	return writeString(w, head+note+body.String())
}

func writeString(w io.Writer, s string) error {
	if _, err := io.WriteString(w, s); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}
