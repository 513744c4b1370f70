package compiler

import (
	"sort"

	"cuelang.org/go/cue/ast"
)

// A policy is evaluated in parts when it can be: the shared part (files
// that define no account: defaults, templates, definitions) and one group
// per set of account files (files that touch the same account form one
// group). Each group is evaluated together with the shared part as a CUE
// instance of its own, which keeps memory small and lets groups run in
// parallel and be cached.
//
// That is only equivalent to evaluating the whole directory when no file
// can see another group's accounts, so partition falls back to one whole
// instance when any file refers to `accounts` in an expression, when a file
// both defines accounts and holds shared declarations, or when the shared
// part could itself produce accounts (embeddings, comprehensions, an
// accounts value that is not a plain struct of templates).

// partitioning is the outcome of partition.
type partitioning struct {
	whole  bool    // evaluate everything as one instance
	reason string  // why, when whole
	shared []int   // indices of the shared files
	groups [][]int // indices of each group's files, groups sorted by first account
	// accounts are the accounts each file defines, by file index.
	accounts [][]string
}

// partition splits files described by infos (in the order of the files
// slice); names are the files' names, for messages.
func partition(infos []fileInfo, names []string) partitioning {
	var p partitioning
	parent := map[string]string{} // union-find over account ids
	var find func(string) string
	find = func(a string) string {
		if parent[a] == a {
			return a
		}
		r := find(parent[a])
		parent[a] = r
		return r
	}
	union := func(a, b string) {
		ra, rb := find(a), find(b)
		if ra != rb {
			if ra < rb {
				parent[rb] = ra
			} else {
				parent[ra] = rb
			}
		}
	}
	fileAccounts := make([][]string, len(infos))
	for i, info := range infos {
		if info.whole != "" {
			return partitioning{whole: true, reason: names[i] + ": " + info.whole}
		}
		if len(info.accounts) == 0 {
			p.shared = append(p.shared, i)
			continue
		}
		if info.shared {
			return partitioning{whole: true, reason: names[i] + " defines accounts and shared declarations"}
		}
		fileAccounts[i] = info.accounts
		for _, a := range info.accounts {
			if _, ok := parent[a]; !ok {
				parent[a] = a
			}
			union(info.accounts[0], a)
		}
	}
	byRoot := map[string][]int{}
	var roots []string
	for i, accts := range fileAccounts {
		if len(accts) == 0 {
			continue
		}
		r := find(accts[0])
		if _, ok := byRoot[r]; !ok {
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], i)
	}
	sort.Strings(roots)
	for _, r := range roots {
		p.groups = append(p.groups, byRoot[r])
	}
	p.accounts = fileAccounts
	return p
}

// fileInfo is what partition needs to know about one file.
type fileInfo struct {
	accounts []string // concrete accounts the file defines
	shared   bool     // it also holds declarations for every account
	whole    string   // non-empty: the policy must be evaluated whole, and why
}

func inspectFile(f *ast.File) fileInfo {
	if refersToAccounts(f) {
		return fileInfo{whole: "refers to accounts in an expression"}
	}
	return inspectDecls(f)
}

// inspectDecls is inspectFile of a file that does not refer to accounts
// in an expression: what its top-level declarations say.
func inspectDecls(f *ast.File) fileInfo {
	var info fileInfo
	seen := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.Package, *ast.ImportDecl, *ast.CommentGroup, *ast.Attribute:
		case *ast.Field:
			name, _, err := ast.LabelName(d.Label)
			if err != nil {
				// A dynamic or pattern label at the top level.
				info.whole = "has a computed top-level label"
				return info
			}
			if name != "accounts" {
				info.shared = true
				continue
			}
			st, ok := d.Value.(*ast.StructLit)
			if !ok {
				info.whole = "accounts is not a plain struct"
				return info
			}
			for _, e := range st.Elts {
				switch e := e.(type) {
				case *ast.CommentGroup, *ast.Attribute:
				case *ast.Field:
					if _, isPattern := e.Label.(*ast.ListLit); isPattern {
						info.shared = true
						continue
					}
					acct, isIdent, err := ast.LabelName(e.Label)
					if err != nil || (!isIdent && !isStringLabel(e.Label)) {
						info.whole = "has a computed account label"
						return info
					}
					if !seen[acct] {
						seen[acct] = true
						info.accounts = append(info.accounts, acct)
					}
				default:
					info.whole = "accounts holds an embedding or comprehension"
					return info
				}
			}
		default:
			// let clauses are shared; embeddings and comprehensions may
			// produce accounts.
			if _, ok := d.(*ast.LetClause); ok {
				info.shared = true
				continue
			}
			info.whole = "has a top-level embedding or comprehension"
			return info
		}
	}
	sort.Strings(info.accounts)
	return info
}

func isStringLabel(l ast.Label) bool {
	b, ok := l.(*ast.BasicLit)
	return ok && b.Value != "" && (b.Value[0] == '"' || b.Value[0] == '\'')
}

// refersToAccounts reports whether the identifier accounts is used as a
// reference anywhere in the file (as a label it is fine).
func refersToAccounts(f *ast.File) bool {
	found := false
	labels := map[*ast.Ident]bool{}
	ast.Walk(f, func(n ast.Node) bool {
		if found {
			return false
		}
		switch n := n.(type) {
		case *ast.Field:
			if id, ok := n.Label.(*ast.Ident); ok {
				labels[id] = true
			}
		case *ast.SelectorExpr:
			if id, ok := n.Sel.(*ast.Ident); ok {
				labels[id] = true
			}
		case *ast.Ident:
			if n.Name == "accounts" && !labels[n] {
				found = true
			}
		}
		return true
	}, nil)
	return found
}
