package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/testservers"
)

// privatePG is a PostgreSQL server of one test: Debian's binaries
// (/usr/lib/postgresql/*/bin), its data directory under t.TempDir(), on a
// port of its own, so that a test may crash it (crash: an immediate stop,
// no checkpoint, crash recovery at the next start) and start it again
// without disturbing anybody else's database. Run as root (PostgreSQL
// refuses to), its programs run as the postgres user.
type privatePG struct {
	t    *testing.T
	bin  string
	dir  string // owned by the server's user: data/ and log
	port int
	cred *syscall.Credential // nil: as the test's own user
}

// startPrivatePG makes and starts a private server. Without the binaries
// the test is skipped, or fails when TICKETING_REQUIRE_SERVERS is set.
func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(bins, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	p := &privatePG{t: t}
	for _, b := range bins {
		if isExec(filepath.Join(b, "initdb")) && isExec(filepath.Join(b, "pg_ctl")) && isExec(filepath.Join(b, "postgres")) {
			p.bin = b
			break
		}
	}
	if p.bin == "" {
		msg := "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
		if testservers.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	p.dir = filepath.Join(t.TempDir(), "pg")
	if err := os.Mkdir(p.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs another user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// The server's user must reach its directory: the test's
		// temporary directories are root's (0700).
		for d := filepath.Dir(p.dir); d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(p.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := strings.Cut(freeAddr(t), ":")
	p.port, _ = strconv.Atoi(port)
	p.run("initdb", "-D", p.data(), "-U", "postgres", "-E", "UTF8", "--locale=C", "--auth=trust", "--no-sync")
	p.start()
	t.Cleanup(func() {
		// Stopped, not left running: an immediate stop is enough for a
		// directory about to be removed.
		_ = p.command("pg_ctl", "-D", p.data(), "-m", "immediate", "stop").Run()
	})
	return p
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&0o111 != 0
}

func (p *privatePG) data() string { return filepath.Join(p.dir, "data") }

func (p *privatePG) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, prog), args...)
	cmd.Dir = p.dir
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd
}

func (p *privatePG) run(prog string, args ...string) {
	p.t.Helper()
	if out, err := p.command(prog, args...).CombinedOutput(); err != nil {
		p.t.Fatalf("%s: %v\n%s", prog, err, out)
	}
}

// start starts the server and waits until it accepts connections (pg_ctl
// -w): after a crash, once its recovery is done.
func (p *privatePG) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories='' -c max_connections=100 "+
		"-c fsync=off -c full_page_writes=off", p.port)
	// fsync off loses nothing here: a crash of the server's processes
	// leaves what they wrote in the kernel's cache.
	p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "-o", opts, "start")
}

// crash stops the server as a crash would: every server process killed
// (SIGQUIT, no checkpoint), its clients' connections cut.
func (p *privatePG) crash() {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.data(), "-m", "immediate", "stop")
}

// url is the URL of database db as the superuser.
func (p *privatePG) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// createDB creates a database.
func (p *privatePG) createDB(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var conn *pgx.Conn
	eventually.Nil(p.t, 30*time.Second, func() error {
		var err error
		conn, err = pgx.Connect(ctx, p.url("postgres"))
		return err
	})
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		p.t.Fatal(err)
	}
}
