package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/gatecheck/gatecheck/web"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// cmdUser manages staff accounts: add [--admin] NAME, passwd NAME, list,
// role NAME admin|agent, remove NAME. A password comes from a prompt on a
// terminal, or from the first line of standard input.
func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("user", stderr, "gatecheck user add [--admin] [--db FILE] NAME\n       gatecheck user passwd|remove [--db FILE] NAME\n       gatecheck user role [--db FILE] NAME admin|agent\n       gatecheck user list [--db FILE]")
	dbPath := fs.String("db", envOr("GATECHECK_DB", "gatecheck.db"), dbUsage)
	admin := fs.Bool("admin", false, "add: make the account an admin (who also manages users, webhooks and API keys); the default is an agent")
	if len(args) == 0 {
		fs.Usage()
		return exitUsage
	}
	verb := args[0]
	want := map[string]int{"add": 1, "passwd": 1, "remove": 1, "role": 2, "list": 0}
	n, known := want[verb]
	if !known {
		fs.Usage()
		return exitUsage
	}
	positional, code, ok := parseArgs(fs, args[1:], n)
	if !ok {
		return code
	}
	if *admin && verb != "add" {
		fmt.Fprintln(stderr, "gatecheck user: --admin goes with add; change a role with gatecheck user role NAME admin")
		return exitUsage
	}
	var name string
	if n > 0 {
		name = strings.TrimSpace(positional[0])
		if err := wizard.CheckUserName(name); err != nil {
			fmt.Fprintln(stderr, "gatecheck user:", wizard.ErrorMessage(err))
			return exitUsage
		}
	}
	var role wizard.Role
	if verb == "role" {
		role = wizard.Role(positional[1])
		if !role.Valid() {
			fmt.Fprintf(stderr, "gatecheck user: a role is admin or agent, not %q\n", positional[1])
			return exitUsage
		}
	}
	var hash string
	if verb == "add" || verb == "passwd" {
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "gatecheck user:", err)
			return exitUsage
		}
		if hash, err = web.HashPassword(pw); err != nil {
			fmt.Fprintln(stderr, "gatecheck user:", wizard.ErrorMessage(err))
			return exitUsage
		}
	}
	db, err := sqlite.Open(ctx, *dbPath)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck user:", err)
		return exitProblem
	}
	defer db.Close()
	switch verb {
	case "add":
		role = wizard.RoleAgent
		if *admin {
			role = wizard.RoleAdmin
		}
		_, err = db.CreateUser(ctx, name, hash, role)
	case "passwd":
		err = db.SetPassword(ctx, name, hash)
	case "role":
		err = db.SetRole(ctx, name, role)
	case "remove":
		err = db.DeleteUser(ctx, name)
	case "list":
		return listUsers(ctx, db, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck user:", wizard.ErrorMessage(err))
		return exitProblem
	}
	switch verb {
	case "add":
		fmt.Fprintf(stdout, "Added %s, %s. They can sign in at /staff.\n", name, roleWords(role))
	case "passwd":
		fmt.Fprintf(stdout, "Changed the password of %s and ended their sessions.\n", name)
	case "role":
		fmt.Fprintf(stdout, "%s is now %s.\n", name, roleWords(role))
	case "remove":
		fmt.Fprintf(stdout, "Removed %s and ended their sessions; their notes keep their name.\n", name)
	}
	return exitOK
}

// roleWords says what a role may do.
func roleWords(r wizard.Role) string {
	if r == wizard.RoleAdmin {
		return "an admin (works cases, manages users, webhooks and API keys)"
	}
	return "an agent (works cases)"
}

func listUsers(ctx context.Context, db *sqlite.DB, stdout, stderr io.Writer) int {
	users, err := db.Users(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck user:", err)
		return exitProblem
	}
	if len(users) == 0 {
		fmt.Fprintln(stdout, "No users yet: add an admin with gatecheck user add --admin NAME.")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, stamp(u.CreatedAt))
	}
	tw.Flush()
	return exitOK
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", fmt.Errorf("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("give the password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// cmdBackup writes a consistent copy of the live database.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("backup", stderr, "gatecheck backup [--db FILE] COPY")
	dbPath := fs.String("db", envOr("GATECHECK_DB", "gatecheck.db"), dbUsage)
	positional, code, ok := parseArgs(fs, args, 1)
	if !ok {
		return code
	}
	if _, err := os.Stat(positional[0]); err == nil {
		fmt.Fprintf(stderr, "gatecheck backup: %s exists; choose a new file name\n", positional[0])
		return exitUsage
	}
	if sqlite.IsPostgres(*dbPath) {
		fmt.Fprintln(stderr, "gatecheck backup:", sqlite.ErrBackupPostgres)
		return exitUsage
	}
	if _, err := os.Stat(*dbPath); err != nil {
		fmt.Fprintf(stderr, "gatecheck backup: no database at %s\n", *dbPath)
		return exitUsage
	}
	db, err := sqlite.Open(ctx, *dbPath, sqlite.WithLogger(slog.New(slog.NewTextHandler(stderr, nil))))
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck backup:", err)
		return exitProblem
	}
	defer db.Close()
	if err := db.Backup(ctx, positional[0]); err != nil {
		fmt.Fprintln(stderr, "gatecheck backup:", err)
		return exitProblem
	}
	fmt.Fprintf(stdout, "Wrote a consistent copy of %s to %s.\n", *dbPath, positional[0])
	return exitOK
}
