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

// apiKeyCommand manages the API keys of ticket systems.
var apiKeyCommand = tokenCommand{
	name:     "apikey",
	synopsis: "gatecheck apikey add|revoke [--db FILE] NAME\n       gatecheck apikey list [--db FILE]",
	check:    wizard.CheckKeyName,
	add: func(ctx context.Context, db *sqlite.DB, name string) (string, error) {
		_, token, err := db.CreateAPIKey(ctx, name, "")
		return token, err
	},
	added:   "Added the API key %s. It is shown once: give it to the ticket system, which sends it as\n  Authorization: Bearer KEY\n",
	revoke:  func(ctx context.Context, db *sqlite.DB, name string) error { return db.RevokeAPIKey(ctx, name) },
	revoked: "Revoked the API key %s: it is refused from now on.\n",
	list:    listAPIKeys,
}

// cmdAPIKey manages the API keys of ticket systems: add NAME (prints the
// new key alone on standard output), list, revoke NAME.
func cmdAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return apiKeyCommand.run(ctx, args, stdout, stderr)
}

// listAPIKeys writes the API keys as a table.
func listAPIKeys(ctx context.Context, db *sqlite.DB, w io.Writer) error {
	keys, err := db.APIKeys(ctx)
	if err != nil || len(keys) == 0 {
		if err == nil {
			fmt.Fprintln(w, "No API keys yet: add one with gatecheck apikey add NAME.")
		}
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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
	return tw.Flush()
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
