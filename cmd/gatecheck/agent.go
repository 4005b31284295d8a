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

// agentCommand manages agents on the server.
var agentCommand = tokenCommand{
	name:     "agent",
	synopsis: "gatecheck agent add|revoke [--db FILE] NAME\n       gatecheck agent list [--db FILE]\n       gatecheck agent run --server URL [--token TOKEN] [--allow-net CIDR]...",
	check: func(name string) error {
		if !agentName.MatchString(name) {
			return wizard.Errorf(wizard.EINVALID, "a name is 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit")
		}
		return nil
	},
	add: func(ctx context.Context, db *sqlite.DB, name string) (string, error) {
		_, token, err := db.CreateAgent(ctx, name)
		return token, err
	},
	added:   "Added agent %s. Its token is shown once: run it inside the customer's network with\n  gatecheck agent run --server https://YOUR-GATECHECK --token TOKEN\n",
	revoke:  func(ctx context.Context, db *sqlite.DB, name string) error { return db.RevokeAgent(ctx, name) },
	revoked: "Revoked agent %s: its token is refused from now on.\n",
	list:    listAgents,
}

// cmdAgent manages agents on the server: add NAME (prints the new token
// alone on standard output), list, revoke NAME; run is the agent itself.
func cmdAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "run" {
		return cmdAgentRun(ctx, args[1:], stdout, stderr)
	}
	return agentCommand.run(ctx, args, stdout, stderr)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listAgents writes the agents as a table.
func listAgents(ctx context.Context, db *sqlite.DB, w io.Writer) error {
	agents, err := db.Agents(ctx)
	if err != nil || len(agents) == 0 {
		if err == nil {
			fmt.Fprintln(w, "No agents yet: add one with gatecheck agent add NAME.")
		}
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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
			seen = stamp(a.LastSeen)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, state, seen, dash(a.LastAddr), dash(a.Version))
	}
	return tw.Flush()
}
