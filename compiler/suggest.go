package compiler

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Suggest returns the candidates that name is most likely a misspelling of,
// best first, at most three: those at the smallest Damerau-Levenshtein
// distance (case ignored) within maxDistance(name), then, when none is that
// close, those name is a "_"-separated part of (sample_rate for
// record_sample_rate). A candidate equal to name is never suggested.
func Suggest(name string, candidates []string) []string {
	limit := maxDistance(name)
	best, bestDist := []string(nil), limit
	lower := strings.ToLower(name)
	for _, cand := range candidates {
		if cand == name {
			continue
		}
		d := editDistance(lower, strings.ToLower(cand))
		switch {
		case d > limit:
		case d < bestDist || best == nil:
			best, bestDist = []string{cand}, d
		case d == bestDist && !slices.Contains(best, cand):
			best = append(best, cand)
		}
	}
	if len(best) == 0 && strings.Contains(lower, "_") {
		for _, cand := range candidates {
			c := strings.ToLower(cand)
			if c != lower && (strings.HasSuffix(c, "_"+lower) || strings.HasPrefix(c, lower+"_")) {
				best = append(best, cand)
			}
		}
	}
	slices.Sort(best)
	best = slices.Compact(best)
	return best[:min(len(best), 3)]
}

// maxDistance is how far a name may be from a suggestion: two edits, one
// for names of five characters or fewer, so that a short name is not
// "corrected" into an unrelated one (url into any).
func maxDistance(name string) int {
	if utf8.RuneCountInString(name) <= 5 {
		return 1
	}
	return 2
}

// editDistance is the optimal-string-alignment Damerau-Levenshtein
// distance between a and b: insertions, deletions, substitutions and
// transpositions of adjacent characters (enabeld is one edit from
// enabled).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// synonyms are the words of KAZOO's and Wazo's own vocabulary (and of
// plain English) for recpol's field names: an unknown field named so is
// told the field it means, when that field exists where it was written.
var synonyms = map[string]string{
	"incoming": "inbound",
	"outgoing": "outbound",
	"internal": "onnet",
	"external": "offnet",
	"on_net":   "onnet",
	"off_net":  "offnet",
	"all":      "any",
	"enable":   "enabled",
	"record":   "enabled",
}

// didYouMean returns " (did you mean X?)" for the candidates name is
// likely a misspelling or a synonym of, or "".
func didYouMean(name string, candidates []string) string {
	var sugg []string
	if s, ok := synonyms[strings.ToLower(name)]; ok && slices.Contains(candidates, s) {
		sugg = []string{s}
	} else {
		sugg = Suggest(name, candidates)
	}
	if len(sugg) == 0 {
		return ""
	}
	return " (did you mean " + orList(sugg) + "?)"
}

// orList joins names as "a", "a or b", "a, b or c".
func orList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// wazoSwitch matches Wazo's per-user recording switches, which are not
// recpol fields: README.md's "Wazo's four switches" maps them to endpoint
// cells (outgoing = outbound, incoming = inbound, internal = onnet,
// external = offnet).
var wazoSwitch = regexp.MustCompile(`^call_record_(outgoing|incoming)_(internal|external)_enabled$`)

// wazoHint says which recpol cell a Wazo switch is, or "" for any other
// name.
func wazoHint(name string) string {
	m := wazoSwitch.FindStringSubmatch(name)
	if m == nil {
		return ""
	}
	dir := map[string]string{"outgoing": "outbound", "incoming": "inbound"}[m[1]]
	net := map[string]string{"internal": "onnet", "external": "offnet"}[m[2]]
	return fmt.Sprintf(": Wazo's %s is the endpoint cell call_recording: %s: %s: enabled "+
		"(a user's or device's, or the account's call_recording: endpoint for all of them; "+
		"see \"Wazo's four switches\" in README.md)", name, dir, net)
}

// unknownFieldMessage says that the field at path is not in the schema,
// with the fields it may have meant there.
func (c *compilation) unknownFieldMessage(path []string) string {
	last := path[len(path)-1]
	msg := fmt.Sprintf("unknown field %q", last)
	if h := wazoHint(last); h != "" {
		return msg + h
	}
	if parent := c.schemaAt(path[:len(path)-1]); parent != nil && parent.kind == sStruct {
		msg += didYouMean(last, sortedKeys(parent.fields))
	}
	return msg
}

// schemaAt returns plainSchema's node for a path of the policy (labels as
// normalizePath gives them), or nil when the schema has no such place. The
// data of an action is that of the module the policy gives it, or every
// module's fields when that module is unknown.
func (c *compilation) schemaAt(path []string) *snode {
	n := plainSchema()
	for i, label := range path {
		switch n.kind {
		case sStruct:
			f, ok := n.fields[label]
			if !ok {
				return nil
			}
			n = f.node
		case sMap:
			n = n.elem
		case sList:
			if !strings.HasPrefix(label, "[") {
				return nil
			}
			n = n.elem
		case sAction:
			switch label {
			case "module":
				n = &snode{kind: sString, enumS: sortedKeys(n.byModule)}
			case "data":
				n = c.actionData(n, path[:i])
			default:
				return nil
			}
		default:
			return nil
		}
	}
	return n
}

// actionData returns the schema of the data of the action at path: its
// module's, or the union of every module's.
func (c *compilation) actionData(action *snode, path []string) *snode {
	if c.value.Exists() {
		if m, err := c.value.LookupPath(selectors(append(slices.Clone(path), "module"))).String(); err == nil {
			if data, ok := action.byModule[m]; ok {
				return data
			}
		}
	}
	union := &snode{kind: sStruct, fields: map[string]sfield{}}
	for _, m := range sortedKeys(action.byModule) {
		for k, f := range action.byModule[m].fields {
			if _, ok := union.fields[k]; !ok {
				union.fields[k] = f
			}
		}
	}
	return union
}
