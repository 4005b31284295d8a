package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/gatecheck/gatecheck/wizard/sqlite"
)

// dbUsage is the help of every --db flag.
const dbUsage = "SQLite database file, or a postgres:// URL of a PostgreSQL database (GATECHECK_DB)"

// dbName is how a --db value is shown: a URL without its password.
func dbName(addr string) string {
	if !sqlite.IsPostgres(addr) {
		return addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "a PostgreSQL database"
	}
	return u.Redacted()
}

// lockSQLite takes the lock file beside the SQLite database at path for
// this process, or says which process holds it: two servers on one file
// would each run their own probe queue, limits and loops over the same
// cases. The lock is the kernel's (flock), so it ends with the process,
// however that ends. The returned func lets it go.
func lockSQLite(path string) (func(), error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := "another process"
			if pid, err := strconv.Atoi(strings.TrimSpace(string(holder))); err == nil {
				who = fmt.Sprintf("process %d", pid)
			}
			return nil, fmt.Errorf("%s is in use by another gatecheck (%s, which holds %s): stop it first. "+
				"Only one gatecheck may serve a SQLite file; several instances need PostgreSQL (--db postgres://...)", path, who, name)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
