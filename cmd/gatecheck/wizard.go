package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// cmdWizard probes a URL, then walks the troubleshooting tree with the
// person in the terminal.
func cmdWizard(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("wizard", stderr, "gatecheck wizard [flags] URL")
	pf := addProbeFlags(fs)
	sf := addSettingsFlags(fs)
	positional, code, ok := parseArgs(fs, args, 1)
	if !ok {
		return code
	}
	tree, settings, err := sf.resolve()
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck wizard:", err)
		return exitUsage
	}
	cfg, err := pf.config()
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck wizard:", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "Probing %s …\n", positional[0])
	rep := runProbes(ctx, cfg, positional[0], true, stderr)
	mark := "✗"
	if !rep.Problem() {
		mark = "✓"
	}
	writeWrapped(stdout, mark+" ", fmt.Sprintf("%s: %s", rep.Verdict.Code, rep.Verdict.Summary))
	fmt.Fprintln(stdout, "  (run \"gatecheck diagnose\" on the address for the full evidence)")

	w := &walker{
		tree: tree, settings: settings, out: stdout, in: bufio.NewScanner(stdin),
		facts: wizard.Facts{Report: rep, URL: rep.URL, Now: time.Now()},
	}
	return w.run()
}

type walker struct {
	tree     *wizard.Tree
	settings wizard.Settings
	facts    wizard.Facts
	answers  []wizard.Answer
	out      io.Writer
	in       *bufio.Scanner
}

func (w *walker) run() int {
	for {
		st, err := w.tree.Next(w.settings, w.facts, w.answers)
		if err != nil {
			fmt.Fprintln(w.out, "gatecheck wizard:", err)
			return exitProblem
		}
		w.showAutomatic(st)
		w.showStep(st)
		if st.Done {
			if st.Outcome == wizard.Resolved {
				return exitOK
			}
			return exitProblem
		}
		if !w.ask(st) {
			fmt.Fprintln(w.out, "\nStopped before the end. Run the wizard again to start over.")
			return exitProblem
		}
	}
}

// showAutomatic prints the checks answered from the report since the
// person's last answer.
func (w *walker) showAutomatic(st *wizard.Step) {
	from := 0
	for i, p := range st.Path {
		if p.Answer >= 0 {
			from = i + 1
		}
	}
	for _, p := range st.Path[from:] {
		if p.Auto {
			fmt.Fprintln(w.out)
			writeWrapped(w.out, "◇ ", p.Title+": "+p.ChoiceLabel)
			writeWrapped(w.out, "  found: ", p.Reason)
		}
	}
}

func (w *walker) showStep(st *wizard.Step) {
	fmt.Fprintf(w.out, "\n── %s %s\n", st.Title, strings.Repeat("─", max(3, width-4-len([]rune(st.Title)))))
	if st.Text != "" {
		writeWrapped(w.out, "", st.Text)
	}
	for i, s := range st.Steps {
		writeWrapped(w.out, fmt.Sprintf("  %d. ", i+1), s)
	}
	if st.Found != "" {
		writeWrapped(w.out, "gatecheck found: ", st.Found)
	}
	if e := st.Escalation; e != nil {
		if e.Address != "" {
			fmt.Fprintf(w.out, "\nSend this to %s (%s):\n\n", e.Team, e.Address)
		} else {
			fmt.Fprintf(w.out, "\nNo contact is set for %s (--team-contact, --support-contact): send them this the way you usually reach them:\n\n", e.Team)
		}
		for _, l := range strings.Split(strings.TrimRight(e.Summary, "\n"), "\n") {
			fmt.Fprintln(w.out, "    "+l)
		}
	}
	if st.Done {
		fmt.Fprintf(w.out, "\nOutcome: %s.\n", st.Outcome)
	}
}

// ask reads the person's choice, or a command, and records it. It returns
// false when the input ends or the person quits.
func (w *walker) ask(st *wizard.Step) bool {
	fmt.Fprintln(w.out)
	for i, c := range st.Choices {
		label := c.Label
		if c.Suggested {
			label += " (what gatecheck found)"
		}
		writeWrapped(w.out, fmt.Sprintf("  [%d] ", i+1), label)
	}
	fmt.Fprintln(w.out, "  b back · p path so far · c N change answer N · q quit")
	for {
		fmt.Fprint(w.out, "> ")
		if !w.in.Scan() {
			return false
		}
		line := strings.TrimSpace(w.in.Text())
		switch {
		case line == "q":
			return false
		case line == "b":
			if len(w.answers) == 0 {
				fmt.Fprintln(w.out, "Nothing to go back to: this is the first question.")
				continue
			}
			w.answers = wizard.Back(w.answers)
			return true
		case line == "p":
			w.showPath(st)
			continue
		case strings.HasPrefix(line, "c "):
			if w.change(st, strings.TrimSpace(line[2:])) {
				return true
			}
			continue
		}
		n, err := strconv.Atoi(line)
		if err != nil || n < 1 || n > len(st.Choices) {
			fmt.Fprintf(w.out, "Type a number from 1 to %d, or b, p, c N or q.\n", len(st.Choices))
			continue
		}
		w.answers = append(w.answers, wizard.Answer{Node: st.Node, Choice: st.Choices[n-1].ID, At: time.Now()})
		return true
	}
}

func (w *walker) showPath(st *wizard.Step) {
	if len(st.Path) == 0 {
		fmt.Fprintln(w.out, "This is the first step.")
		return
	}
	for i, p := range st.Path {
		how := "you answered"
		switch {
		case p.Auto:
			how = "found: " + p.Reason
		case p.Disagreed:
			how = "you answered, though gatecheck found: " + p.Found
		}
		writeWrapped(w.out, fmt.Sprintf("  %d. ", i+1), fmt.Sprintf("%s: %s (%s)", p.Title, p.ChoiceLabel, how))
	}
}

// change revisits path entry arg (1-based) and replaces its answer.
func (w *walker) change(st *wizard.Step, arg string) bool {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > len(st.Path) {
		fmt.Fprintf(w.out, "Type c and the number of an earlier step (p lists them), from 1 to %d.\n", len(st.Path))
		return false
	}
	at, err := w.tree.StepAt(w.settings, w.facts, st.Path[n-1].Node)
	if err != nil {
		fmt.Fprintln(w.out, err)
		return false
	}
	w.showStep(at)
	for i, c := range at.Choices {
		writeWrapped(w.out, fmt.Sprintf("  [%d] ", i+1), c.Label)
	}
	for {
		fmt.Fprint(w.out, "new answer> ")
		if !w.in.Scan() {
			return false
		}
		k, err := strconv.Atoi(strings.TrimSpace(w.in.Text()))
		if err != nil || k < 1 || k > len(at.Choices) {
			fmt.Fprintf(w.out, "Type a number from 1 to %d.\n", len(at.Choices))
			continue
		}
		revised, err := w.tree.Revise(w.settings, w.facts, w.answers, at.Node, at.Choices[k-1].ID, time.Now())
		if err != nil {
			fmt.Fprintln(w.out, err)
			return false
		}
		w.answers = revised
		return true
	}
}
