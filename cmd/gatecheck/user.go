package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/gatecheck/gatecheck/web"
	"github.com/gatecheck/gatecheck/wizard"
	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// cmdUser manages staff accounts: add NAME, passwd NAME. The password comes
// from a prompt on a terminal, or from the first line of standard input.
func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("user", stderr, "gatecheck user add|passwd [--db FILE] NAME")
	dbPath := fs.String("db", envOr("GATECHECK_DB", "gatecheck.db"), "SQLite database file (GATECHECK_DB)")
	positional, code, ok := parseArgs(fs, args, 2)
	if !ok {
		return code
	}
	if positional[0] != "add" && positional[0] != "passwd" {
		fs.Usage()
		return exitUsage
	}
	verb, name := positional[0], strings.TrimSpace(positional[1])
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\r\n") {
		fmt.Fprintln(stderr, "gatecheck user: a name is 1 to 64 characters without spaces")
		return exitUsage
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck user:", err)
		return exitUsage
	}
	hash, err := web.HashPassword(pw)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck user:", wizard.ErrorMessage(err))
		return exitUsage
	}
	db, err := sqlite.Open(ctx, *dbPath)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck user:", err)
		return exitProblem
	}
	defer db.Close()
	if verb == "add" {
		_, err = db.CreateUser(ctx, name, hash)
	} else {
		err = db.SetPassword(ctx, name, hash)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck user:", wizard.ErrorMessage(err))
		return exitProblem
	}
	if verb == "add" {
		fmt.Fprintf(stdout, "Added %s. They can sign in at /staff.\n", name)
	} else {
		fmt.Fprintf(stdout, "Changed the password of %s and ended their sessions.\n", name)
	}
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
	dbPath := fs.String("db", envOr("GATECHECK_DB", "gatecheck.db"), "SQLite database file (GATECHECK_DB)")
	positional, code, ok := parseArgs(fs, args, 1)
	if !ok {
		return code
	}
	if _, err := os.Stat(positional[0]); err == nil {
		fmt.Fprintf(stderr, "gatecheck backup: %s exists; choose a new file name\n", positional[0])
		return exitUsage
	}
	if _, err := os.Stat(*dbPath); err != nil {
		fmt.Fprintf(stderr, "gatecheck backup: no database at %s\n", *dbPath)
		return exitUsage
	}
	db, err := sqlite.Open(ctx, *dbPath)
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
