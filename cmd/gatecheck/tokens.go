package main

import (
	"context"
	"fmt"
	"io"

	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// tokenCommand manages named holders of bearer tokens in the database
// (agents, API keys): add NAME prints the new token alone on standard
// output (for scripts; the advice goes to standard error), revoke NAME
// refuses it from then on, list shows them all.
type tokenCommand struct {
	name     string // the command, as in "gatecheck NAME add"
	synopsis string
	check    func(name string) error // whether NAME may be a name
	add      func(ctx context.Context, db *sqlite.DB, name string) (token string, err error)
	added    string // advice after add; %s is the name
	revoke   func(ctx context.Context, db *sqlite.DB, name string) error
	revoked  string // said after revoke; %s is the name
	list     func(ctx context.Context, db *sqlite.DB, w io.Writer) error
}

func (tc tokenCommand) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(tc.name, stderr, tc.synopsis)
	dbPath := fs.String("db", envOr("GATECHECK_DB", "gatecheck.db"), dbUsage)
	want := map[string]int{"add": 1, "revoke": 1, "list": 0}
	n, known := 0, false
	if len(args) > 0 {
		n, known = want[args[0]]
	}
	if !known {
		fs.Usage()
		return exitUsage
	}
	verb := args[0]
	positional, code, ok := parseArgs(fs, args[1:], n)
	if !ok {
		return code
	}
	prefix := "gatecheck " + tc.name + ":"
	if n == 1 {
		if err := tc.check(positional[0]); err != nil {
			fmt.Fprintln(stderr, prefix, wizard.ErrorMessage(err))
			return exitUsage
		}
	}
	db, err := sqlite.Open(ctx, *dbPath)
	if err != nil {
		fmt.Fprintln(stderr, prefix, err)
		return exitProblem
	}
	defer db.Close()
	switch verb {
	case "add":
		var token string
		if token, err = tc.add(ctx, db, positional[0]); err == nil {
			fmt.Fprintln(stdout, token)
			fmt.Fprintf(stderr, tc.added, positional[0])
		}
	case "revoke":
		if err = tc.revoke(ctx, db, positional[0]); err == nil {
			fmt.Fprintf(stdout, tc.revoked, positional[0])
		}
	case "list":
		err = tc.list(ctx, db, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, prefix, wizard.ErrorMessage(err))
		return exitProblem
	}
	return exitOK
}
