package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/gatecheck/gatecheck/wizard"
)

func cmdTree(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, treeUsage)
		return exitUsage
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			fmt.Fprint(stderr, treeUsage)
			return exitUsage
		}
		t, err := wizard.Load(args[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitProblem
		}
		fmt.Fprintf(stdout, "%s: valid, %d nodes, version %s\n", args[1], len(t.Nodes), t.ID())
		return exitOK
	case "show":
		fs := flag.NewFlagSet("tree show", flag.ContinueOnError)
		fs.SetOutput(stderr)
		dot := fs.Bool("dot", false, "print Graphviz dot instead of an outline")
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() > 1 {
			fmt.Fprint(stderr, treeUsage)
			return exitUsage
		}
		t := wizard.Default()
		if fs.NArg() == 1 {
			var err error
			if t, err = wizard.Load(fs.Arg(0)); err != nil {
				fmt.Fprintln(stderr, err)
				return exitProblem
			}
		}
		write := t.WriteOutline
		if *dot {
			write = t.WriteDot
		}
		if err := write(stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return exitProblem
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "gatecheck tree: unknown command %q\n\n%s", args[0], treeUsage)
	return exitUsage
}

const treeUsage = `Usage:
  gatecheck tree check FILE          validate a tree file; errors name their lines
  gatecheck tree show [--dot] [FILE] print a tree (the built-in 502 tree by default)
                                     as an outline, or as Graphviz dot
`
