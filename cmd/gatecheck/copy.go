package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// cmdCopy copies an installation from one database to another: from
// SQLite to PostgreSQL when it outgrows one machine, or back.
func cmdCopy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("copy", stderr, "gatecheck copy --from DB --to DB")
	from := fs.String("from", "", "the database to copy: a SQLite file or a postgres:// URL")
	to := fs.String("to", "", "a new, empty database: a SQLite file (created) or a postgres:// URL of an empty database")
	if _, code, ok := parseArgs(fs, args, 0); !ok {
		return code
	}
	if *from == "" || *to == "" {
		fmt.Fprintln(stderr, "gatecheck copy: give both --from and --to")
		fs.Usage()
		return exitUsage
	}
	if *from == *to {
		fmt.Fprintln(stderr, "gatecheck copy: --from and --to are the same database")
		return exitUsage
	}
	if !sqlite.IsPostgres(*from) {
		if _, err := os.Stat(*from); err != nil {
			fmt.Fprintf(stderr, "gatecheck copy: no database at %s\n", *from)
			return exitUsage
		}
	}
	// A server writing meanwhile would lose what it writes after the
	// copy's snapshot: on SQLite, its lock says whether one runs.
	for _, addr := range []string{*from, *to} {
		if !sqlite.IsPostgres(addr) {
			unlock, err := lockSQLite(addr)
			if err != nil {
				fmt.Fprintln(stderr, "gatecheck copy:", err)
				return exitProblem
			}
			defer unlock()
		}
	}
	log := sqlite.WithLogger(slog.New(slog.NewTextHandler(stderr, nil)))
	src, err := sqlite.Open(ctx, *from, log)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck copy:", err)
		return exitProblem
	}
	defer src.Close()
	dst, err := sqlite.Open(ctx, *to, log)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck copy:", err)
		return exitProblem
	}
	defer dst.Close()
	counts, err := sqlite.Copy(ctx, src, dst)
	if err != nil {
		fmt.Fprintln(stderr, "gatecheck copy:", err)
		return exitProblem
	}
	fmt.Fprintf(stdout, "Copied %s (%s) to %s (%s):\n", dbName(*from), src.Engine(), dbName(*to), dst.Engine())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	var total int64
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\t\n", c.Table, c.Rows)
		total += c.Rows
	}
	fmt.Fprintf(tw, "all tables\t%d\t\n", total)
	tw.Flush()
	return exitOK
}
