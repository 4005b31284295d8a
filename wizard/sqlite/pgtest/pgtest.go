// Package pgtest runs a throwaway PostgreSQL server for tests: Debian's
// postgresql package, initdb and pg_ctl in a temporary folder, reached on
// a unix socket in that folder only (no TCP port), fsync off. One server
// serves a test binary; each test gets a database of its own, cloned from
// a template that the caller prepares once (migrated, say).
package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// ErrMissing says PostgreSQL's programs are not installed.
var ErrMissing = errors.New("PostgreSQL is not installed (Debian: apt-get install postgresql)")

// Required says whether a missing PostgreSQL must fail the tests rather
// than skip them: GATECHECK_POSTGRES=require (.ci/run sets it).
func Required() bool { return os.Getenv("GATECHECK_POSTGRES") == "require" }

// Server is a running PostgreSQL server.
type Server struct {
	dir  string // data folder, and where the socket is
	bin  string
	cred *syscall.Credential
	n    atomic.Int64
}

// binDir finds initdb and pg_ctl: GATECHECK_PG_BIN, the newest of Debian's
// /usr/lib/postgresql/N/bin, or the PATH.
func binDir() (string, error) {
	if d := os.Getenv("GATECHECK_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrMissing
}

// Start initialises and starts a server in a new temporary folder. Run as
// root, the server runs as the postgres user (PostgreSQL refuses root).
func Start(ctx context.Context) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gatecheck-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	// Whose server this is: a test binary killed before it could stop
	// its server leaves it running, and the next Start stops it.
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running PostgreSQL as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	s.stopOrphans(ctx)
	data := filepath.Join(dir, "data")
	if err := s.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts := "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c listen_addresses='' " +
		"-c unix_socket_directories=" + dir + " -c max_connections=400 -c shared_buffers=32MB"
	if err := s.run(ctx, "pg_ctl", "-D", data, "-o", opts, "-w", "-t", "60", "-l", filepath.Join(dir, "log"), "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	return s, nil
}

func (s *Server) run(ctx context.Context, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", prog, err, out.Bytes())
	}
	return nil
}

// stopOrphans stops the servers of test binaries that died without
// stopping theirs, and removes their folders.
func (s *Server) stopOrphans(ctx context.Context) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "gatecheck-pg-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner"))
		if d == s.dir || err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue // its owner lives
		}
		if _, err := os.Stat(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			s.run(ctx, "pg_ctl", "-D", filepath.Join(d, "data"), "-m", "immediate", "-w", "stop")
		}
		os.RemoveAll(d)
	}
}

// Stop stops the server at once and removes its folder.
func (s *Server) Stop() error {
	err := s.run(context.Background(), "pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	return errors.Join(err, os.RemoveAll(s.dir))
}

// URL is the postgres:// URL of database name on the server.
func (s *Server) URL(name string) string {
	return "postgres://postgres@/" + name + "?host=" + url.QueryEscape(s.dir) + "&sslmode=disable"
}

// exec runs statements on the postgres database.
func (s *Server) exec(ctx context.Context, stmts ...string) error {
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// CreateDatabase makes an empty database and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	return s.URL(name), s.exec(ctx, `CREATE DATABASE "`+name+`"`)
}

// Clone makes a new database, a copy of template (which nothing may be
// connected to), and returns its URL and a func that drops it.
func (s *Server) Clone(ctx context.Context, template string) (string, func() error, error) {
	name := fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1e9, s.n.Add(1))
	if err := s.exec(ctx, `CREATE DATABASE "`+name+`" TEMPLATE "`+template+`"`); err != nil {
		return "", nil, err
	}
	return s.URL(name), func() error { return s.exec(context.Background(), `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`) }, nil
}
