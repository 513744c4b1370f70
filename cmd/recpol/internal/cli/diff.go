package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/compiler"
	recpolcue "github.com/recpol/recpol/cue"
	"github.com/recpol/recpol/simulate"
	"github.com/recpol/recpol/table"
)

func newDiffCmd(s *streams) *cobra.Command {
	var format, dir, out string
	var exitCode bool
	var maxChars int
	cmd := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Show everything a change to a policy changes: calls, defaults, cells, callflows, metaflows",
		Long: `diff compares two compiled policies and prints, as a review summary, what
changed, for whom, before -> after. It leads with what changes for calls:

  newly recorded      calls that start a recording they did not start
                      before, by account and by the recording and what
                      enabled it
  no longer recorded  calls that no longer start a recording
  settings changed    recordings that start on both sides with other
                      settings, by change ("record_sample_rate: 8000 ->
                      16000 (<- defaults record_sample_rate)")

then the details, identical changes grouped into one entry with their count
and their accounts, largest first:

  defaults    a platform default whose value changed
  cells       every cell whose decision, settings or provenance changed;
              cells that record nothing on either side are listed apart
              ("no recording affected")
  callflows   callflows added, removed or changed: numbers, patterns and
              each action with its resolved settings, label, media_name,
              origin and should_follow_transfer
  metaflows   per endpoint (resolved device > owner > account, endpoints
              with the same change grouped): binding_digit, digit_timeout,
              listen_on, and each code added, removed or changed, with what
              it does in words ("*73 does: unmasks every recording of the
              call -> stops the metaflow recordings of the endpoint's own leg")
  calls       every simulated call (see 'recpol simulate') whose recordings
              changed: "- " stops, "+ " starts, "~ " changes settings
  calls to callflow numbers
              every call from a device or offnet to a callflow's number or
              pattern whose recordings changed (account, caller, callflow)

The first line after the versions counts the changes by kind.

OLD and NEW are each one of:
  DIR       a policy directory, compiled
  FILE      a compiled table (the JSON of 'recpol compile')
  git:REV   the policy directory at git revision REV; the directory is the
            other side when that is a directory, or --dir

Formats: text (default) and md (a pull-request comment). The md report
on stdout holds at most --max-chars characters (default 60,000; a GitHub
comment holds 65,536): past it, it keeps the summary and, section by
section, the largest groups, and says what it left out. -o FILE writes the
whole report to FILE as well (a CI artifact), and the cut report names it.
With text, -o FILE writes the report to FILE instead of stdout.

Exit status: 0 (also when something changed, unless --exit-code), 1 with
--exit-code when something changed or when a policy is invalid, 2 usage or
I/O error.`,
		Example: `  recpol diff git:main policies
  recpol diff --dir policies git:HEAD~1 git:HEAD --format md
  recpol diff old-table.json policies --exit-code
  recpol diff git:origin/main policies --format md -o review-full.md > comment.md`,
		Args: exactArgs(2, "two policies (OLD NEW)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "md" {
				return usageErr(fmt.Errorf("--format %q: want text or md", format))
			}
			if dir == "" {
				for _, a := range args {
					if info, err := os.Stat(a); err == nil && info.IsDir() && !strings.HasPrefix(a, "git:") {
						dir = a
						break
					}
				}
			}
			old, err := loadSide(s, args[0], dir)
			if err != nil {
				return err
			}
			new, err := loadSide(s, args[1], dir)
			if err != nil {
				return err
			}
			d, err := simulate.Diff(old, new)
			if err != nil {
				return usageErr(err)
			}
			if err := writeDiff(s, d, format, out, maxChars); err != nil {
				return err
			}
			if exitCode && d.Changed() {
				return invalid()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or md")
	cmd.Flags().StringVar(&dir, "dir", "", "the policy `DIR` that git:REV sides refer to (default: the side that is a directory)")
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit with status 1 when something changed")
	cmd.Flags().StringVarP(&out, "output", "o", "", "md: write the whole report to `FILE` too; text: write to FILE instead of stdout")
	cmd.Flags().IntVar(&maxChars, "max-chars", simulate.CommentLimit, "md: the most characters the report on stdout may have (0: no limit)")
	return cmd
}

// writeDiff writes a diff report: text to stdout or out; md whole to out
// when it is set, and within maxChars to stdout.
func writeDiff(s *streams, d *simulate.DiffResult, format, out string, maxChars int) error {
	if format == "text" {
		return writeOutput(s, out, d.WriteText)
	}
	o := simulate.MarkdownOptions{MaxChars: maxChars}
	if out != "" && out != "-" {
		if err := writeOutput(s, out, d.WriteMarkdown); err != nil {
			return err
		}
		o.FullReport = "`" + out + "`"
	}
	if err := d.WriteMarkdownWith(s.stdout, o); err != nil {
		return usageErr(err)
	}
	return nil
}

// loadSide loads one side of a diff: git:REV, a policy directory or a
// compiled table file.
func loadSide(s *streams, spec, dir string) (*table.Table, error) {
	if rev, ok := strings.CutPrefix(spec, "git:"); ok {
		if rev == "" {
			return nil, usageErr(fmt.Errorf("%s: want git:REV", spec))
		}
		if dir == "" {
			return nil, usageErr(fmt.Errorf("%s: which policy directory? give it as the other side or with --dir", spec))
		}
		files, err := gitPolicyFiles(dir, rev)
		if err != nil {
			return nil, usageErr(err)
		}
		res := compiler.Options{}.CompileFiles(files)
		printDiagnostics(s, res.Diagnostics)
		if res.Table == nil {
			return nil, invalid()
		}
		return res.Table, nil
	}
	info, err := os.Stat(spec)
	if err != nil {
		return nil, usageErr(fmt.Errorf("%s: %w", spec, err))
	}
	if info.IsDir() {
		return compileDir(s, spec)
	}
	f, err := os.Open(spec)
	if err != nil {
		return nil, usageErr(err)
	}
	defer f.Close()
	t, err := table.Decode(f, compiler.DefaultsDigest())
	if err != nil {
		return nil, usageErr(fmt.Errorf("reading table %s: %w", spec, err))
	}
	return t, nil
}

// gitPolicyFiles reads the policy files of dir as they are at git revision
// rev: the .cue files directly in it, with the rules of compiler.ReadDir.
func gitPolicyFiles(dir, rev string) ([]compiler.File, error) {
	git := func(args ...string) ([]byte, error) {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			return nil, fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
		}
		return out, nil
	}
	listing, err := git("ls-tree", "--full-tree", "-z", rev+":./")
	if err != nil {
		return nil, fmt.Errorf("reading %s at %s: %w", dir, rev, err)
	}
	var files []compiler.File
	for _, entry := range strings.Split(string(listing), "\x00") {
		meta, name, ok := strings.Cut(entry, "\t")
		if !ok || !strings.Contains(meta, " blob ") {
			continue
		}
		if !strings.HasSuffix(name, ".cue") || strings.HasPrefix(name, "_") ||
			strings.HasPrefix(name, ".") || name == recpolcue.SchemaFileName {
			continue
		}
		data, err := git("show", rev+":./"+name)
		if err != nil {
			return nil, fmt.Errorf("reading %s at %s: %w", name, rev, err)
		}
		files = append(files, compiler.File{Name: "git:" + rev + ":" + filepath.Join(dir, name), Data: data})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s at %s: %w", dir, rev, compiler.ErrNoFiles)
	}
	return files, nil
}
