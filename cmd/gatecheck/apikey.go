package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// cmdAPIKey manages the API keys of ticket systems: add NAME (prints the
// new key alone on standard output), list, revoke NAME.
func cmdAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("apikey", stderr, "gatecheck apikey add|revoke [--db FILE] NAME\n       gatecheck apikey list [--db FILE]")
	dbPath := fs.String("db", envOr("GATECHECK_DB", "gatecheck.db"), "SQLite database file (GATECHECK_DB)")
	if len(args) == 0 {
		fs.Usage()
		return exitUsage
	}
	verb := args[0]
	want := map[string]int{"add": 1, "revoke": 1, "list": 0}
	n, known := want[verb]
	if !known {
		fs.Usage()
		return exitUsage
	}
	positional, code, ok := parseArgs(fs, args[1:], n)
	if !ok {
		return code
	}
	if n == 1 {
		if err := wizard.CheckKeyName(positional[0]); err != nil {
			fmt.Fprintln(stderr, "gatecheck apikey:", wizard.ErrorMessage(err))
			return exitUsage
		}
	}
	db, err := sqlite.Open(ctx, *dbPath)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck apikey:", err)
		return exitProblem
	}
	defer db.Close()
	switch verb {
	case "add":
		_, token, err := db.CreateAPIKey(ctx, positional[0], "")
		if err != nil {
			fmt.Fprintln(stderr, "gatecheck apikey:", wizard.ErrorMessage(err))
			return exitProblem
		}
		// The key alone on stdout, for scripts; the advice on stderr.
		fmt.Fprintln(stdout, token)
		fmt.Fprintf(stderr, "Added the API key %s. It is shown once: give it to the ticket system, which sends it as\n  Authorization: Bearer KEY\n", positional[0])
	case "revoke":
		if err := db.RevokeAPIKey(ctx, positional[0]); err != nil {
			fmt.Fprintln(stderr, "gatecheck apikey:", wizard.ErrorMessage(err))
			return exitProblem
		}
		fmt.Fprintf(stdout, "Revoked the API key %s: it is refused from now on.\n", positional[0])
	case "list":
		keys, err := db.APIKeys(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "gatecheck apikey:", err)
			return exitProblem
		}
		if len(keys) == 0 {
			fmt.Fprintln(stdout, "No API keys yet: add one with gatecheck apikey add NAME.")
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tCREATED\tBY\tLAST USED")
		for _, k := range keys {
			state := "active"
			if !k.RevokedAt.IsZero() {
				state = "revoked " + stamp(k.RevokedAt)
			}
			used := "never"
			if !k.LastUsed.IsZero() {
				used = stamp(k.LastUsed)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Name, state, stamp(k.CreatedAt), dash(k.CreatedBy), used)
		}
		tw.Flush()
	}
	return exitOK
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
