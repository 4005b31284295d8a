// Command gatecheck helps people get past an HTTP 502 Bad Gateway error: it
// probes a URL from the server and says what is wrong and who can fix it.
//
// Usage:
//
//	gatecheck [serve] [flags]
//	gatecheck user add [--admin] NAME
//	gatecheck user passwd|remove NAME
//	gatecheck user role NAME admin|agent
//	gatecheck user list
//	gatecheck apikey add|revoke NAME
//	gatecheck apikey list
//	gatecheck backup COPY
//	gatecheck copy --from DB --to DB
//	gatecheck diagnose [--json] [--samples N] [--timeout 15s] [--resolver ADDR:PORT] [--allow-net CIDR]... URL
//	gatecheck wizard [flags] URL
//	gatecheck tree check FILE
//	gatecheck tree show [--dot] [FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses, shared by every subcommand.
const (
	exitOK      = 0
	exitProblem = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" {
		return cmdServe(ctx, args, stdout, stderr)
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stdout, stderr)
	case "user":
		return cmdUser(ctx, args[1:], stdin, stdout, stderr)
	case "backup":
		return cmdBackup(ctx, args[1:], stdout, stderr)
	case "copy":
		return cmdCopy(ctx, args[1:], stdout, stderr)
	case "agent":
		return cmdAgent(ctx, args[1:], stdout, stderr)
	case "apikey":
		return cmdAPIKey(ctx, args[1:], stdout, stderr)
	case "diagnose":
		return cmdDiagnose(ctx, args[1:], stdout, stderr)
	case "wizard":
		return cmdWizard(ctx, args[1:], stdin, stdout, stderr)
	case "tree":
		return cmdTree(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "gatecheck: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

const usage = `gatecheck helps people get past an HTTP 502 Bad Gateway error.

Usage:
  gatecheck [serve] [flags]
      Serve the wizard, the helpdesk pages and the API (default
      http://localhost:8080, database gatecheck.db). "gatecheck serve --help"
      lists the flags; each has a GATECHECK_ environment twin. --db (and
      GATECHECK_DB) takes a SQLite file or a postgres:// URL, for every
      command that takes it.

  gatecheck user add [--admin] NAME
  gatecheck user passwd|remove NAME
  gatecheck user role NAME admin|agent
  gatecheck user list
      Manage helpdesk accounts: add one (an agent, who works cases, or with
      --admin an admin, who also manages users, webhooks and API keys),
      change its password (from a prompt, or the first line of standard
      input), its role, or remove it. The last admin stays one.

  gatecheck apikey add|revoke NAME
  gatecheck apikey list
      Manage the API keys of ticket systems: add prints the new key (alone
      on standard output, shown once); it is sent as a bearer token.

  gatecheck agent add|revoke NAME
  gatecheck agent list
      Manage the agents that probe from inside customers' networks: add
      prints the new agent's token (alone on standard output, shown once).

  gatecheck agent run --server URL [--token TOKEN] [--allow-net CIDR]...
      Run an agent inside a customer's network: it asks the server for
      probe jobs (dialling out; no inbound port), probes with its own
      address guard and reports back. The token may come from
      GATECHECK_AGENT_TOKEN instead.

  gatecheck backup COPY
      Write a consistent copy of the live SQLite database to the file COPY
      (a PostgreSQL database is backed up with pg_dump).

  gatecheck copy --from DB --to DB
      Move an installation to another database, everything included (cases
      and their history, accounts, keys, agents, webhooks): from a SQLite
      file to an empty PostgreSQL database, say. Stop gatecheck serve
      first. Says how many rows of each table it copied.

  gatecheck diagnose [--json] [--samples N] [--timeout 15s] [--resolver ADDR:PORT] [--allow-net CIDR]... URL
      Probe URL (DNS, TCP, TLS, HTTP on both schemes, repeated samples) and say
      what is wrong, which layer failed and which gateway answered.
      Exit status: 0 healthy, 1 a problem was diagnosed, 2 bad input or refused target.

  gatecheck wizard [flags] URL
      Probe URL, then walk the troubleshooting tree in the terminal, from what
      was found to the fix. Operator settings: --tree FILE, --org, --team,
      --team-contact, --support-contact, --status-page, --time-zone,
      --hosted-allowlist (each with a GATECHECK_ environment twin).

  gatecheck tree check FILE
  gatecheck tree show [--dot] [FILE]
      Validate a troubleshooting tree file, or print one (the built-in 502 tree
      by default) as an outline or as Graphviz dot.

Run "gatecheck COMMAND --help" for the flags of a command.
`

// newFlagSet returns a flag set that reports to stderr with a usage line.
func newFlagSet(name string, stderr io.Writer, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}
