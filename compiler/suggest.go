package compiler

import (
	"fmt"
	"github.com/recpol/recpol/internal/suggest"
	"slices"
	"strings"
)

// Suggest returns the candidates that name is most likely a misspelling
// of, best first, at most three (suggest.Names).
func Suggest(name string, candidates []string) []string { return suggest.Names(name, candidates) }

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
var wazoSwitch = lazyRegexp(`^call_record_(outgoing|incoming)_(internal|external)_enabled$`)

// wazoHint says which recpol cell a Wazo switch is, or "" for any other
// name.
func wazoHint(name string) string {
	m := wazoSwitch().FindStringSubmatch(name)
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
