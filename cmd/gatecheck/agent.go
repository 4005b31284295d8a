package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// agentName is what an agent may be called: it shows in "agent:NAME" and in
// addresses.
var agentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// cmdAgent manages agents on the server: add NAME (prints the new token
// alone on standard output), list, revoke NAME.
func cmdAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("agent", stderr, "gatecheck agent add|revoke [--db FILE] NAME\n       gatecheck agent list [--db FILE]\n       gatecheck agent run --server URL [--token TOKEN] [--allow-net CIDR]...")
	dbPath := fs.String("db", envOr("GATECHECK_DB", "gatecheck.db"), "SQLite database file (GATECHECK_DB)")
	if len(args) == 0 {
		fs.Usage()
		return exitUsage
	}
	if args[0] == "run" {
		return cmdAgentRun(ctx, args[1:], stdout, stderr)
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
	if n == 1 && !agentName.MatchString(positional[0]) {
		fmt.Fprintln(stderr, "gatecheck agent: a name is 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit")
		return exitUsage
	}
	db, err := sqlite.Open(ctx, *dbPath)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck agent:", err)
		return exitProblem
	}
	defer db.Close()
	switch verb {
	case "add":
		_, token, err := db.CreateAgent(ctx, positional[0])
		if err != nil {
			fmt.Fprintln(stderr, "gatecheck agent:", wizard.ErrorMessage(err))
			return exitProblem
		}
		// The token alone on stdout, for scripts; the advice on stderr.
		fmt.Fprintln(stdout, token)
		fmt.Fprintf(stderr, "Added agent %s. Its token is shown once: run it inside the customer's network with\n  gatecheck agent run --server https://YOUR-GATECHECK --token TOKEN\n", positional[0])
	case "revoke":
		if err := db.RevokeAgent(ctx, positional[0]); err != nil {
			fmt.Fprintln(stderr, "gatecheck agent:", wizard.ErrorMessage(err))
			return exitProblem
		}
		fmt.Fprintf(stdout, "Revoked agent %s: its token is refused from now on.\n", positional[0])
	case "list":
		agents, err := db.Agents(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "gatecheck agent:", err)
			return exitProblem
		}
		if len(agents) == 0 {
			fmt.Fprintln(stdout, "No agents yet: add one with gatecheck agent add NAME.")
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tLAST SEEN\tFROM\tVERSION")
		now := time.Now()
		for _, a := range agents {
			state, seen := "offline", "never"
			switch {
			case !a.RevokedAt.IsZero():
				state = "revoked"
			case a.Online(now):
				state = "online"
			}
			if !a.LastSeen.IsZero() {
				seen = a.LastSeen.UTC().Format("2006-01-02 15:04:05 UTC")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, state, seen, dash(a.LastAddr), dash(a.Version))
		}
		tw.Flush()
	}
	return exitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
