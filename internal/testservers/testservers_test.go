package testservers

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServersAnswer connects to every server for real. Under `make test`
// (TICKETING_REQUIRE_SERVERS=1) it proves that the whole devstack is up and
// reachable; without the variables it skips.
func TestServersAnswer(t *testing.T) {
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		v, err := PingPostgres(ctx(t), PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("PostgreSQL %s", v)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		v, err := PingRedis(ctx(t), RedisAddr(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Redis %s", v)
	})
	t.Run("kafka", func(t *testing.T) {
		t.Parallel()
		v, err := PingKafka(ctx(t), KafkaBrokers(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Kafka %s", v)
	})
	t.Run("cql", func(t *testing.T) {
		t.Parallel()
		v, err := PingCQL(ctx(t), CQLHosts(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("CQL server release_version %s", v)
	})
	t.Run("opensearch", func(t *testing.T) {
		t.Parallel()
		v, err := PingOpenSearch(ctx(t), OpenSearchURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("OpenSearch %s", v)
	})
	t.Run("smtp", func(t *testing.T) {
		t.Parallel()
		v, err := PingSMTP(ctx(t), SMTPAddr(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("SMTP %s", v)
	})
	t.Run("mailpit", func(t *testing.T) {
		t.Parallel()
		v, err := PingMailpit(ctx(t), MailpitURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", v)
	})
}

// fakeTB records Skip/Fatalf instead of acting on them; like the real ones it
// stops the calling goroutine.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func call(fn func(testing.TB) string) (f *fakeTB, got string) {
	f = &fakeTB{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		got = fn(f)
	}()
	wg.Wait()
	return f, got
}

func TestMissingVariable(t *testing.T) {
	accessors := map[string]func(testing.TB) string{
		EnvPostgresURL:   PostgresURL,
		EnvRedisAddr:     RedisAddr,
		EnvKafkaBrokers:  func(tb testing.TB) string { return strings.Join(KafkaBrokers(tb), ",") },
		EnvCQLHosts:      func(tb testing.TB) string { return strings.Join(CQLHosts(tb), ",") },
		EnvOpenSearchURL: OpenSearchURL,
		EnvSMTPAddr:      SMTPAddr,
		EnvMailpitURL:    MailpitURL,
	}
	for _, required := range []bool{false, true} {
		for name, fn := range accessors {
			t.Run(fmt.Sprintf("%s/required=%v", name, required), func(t *testing.T) {
				t.Setenv(name, "")
				t.Setenv("CI", "")
				t.Setenv(EnvRequireServers, map[bool]string{false: "0", true: "1"}[required])
				f, _ := call(fn)
				if f.skipped == required || f.failed != required {
					t.Fatalf("skipped=%v failed=%v, want failed=%v", f.skipped, f.failed, required)
				}
				for _, want := range []string{name, "make test", "compose/devstack up", "compose/devstack env"} {
					if !strings.Contains(f.msg, want) {
						t.Errorf("message %q does not name %q", f.msg, want)
					}
				}
			})
		}
	}
}

func TestCIRequiresServers(t *testing.T) {
	t.Setenv(EnvRedisAddr, "")
	t.Setenv(EnvRequireServers, "")
	t.Setenv("CI", "true")
	if f, _ := call(RedisAddr); !f.failed {
		t.Fatalf("with CI=true a missing %s must fail the test, got skipped=%v", EnvRedisAddr, f.skipped)
	}
	t.Setenv("CI", "false")
	if f, _ := call(RedisAddr); !f.skipped {
		t.Fatalf("with CI=false a missing %s must skip, got failed=%v", EnvRedisAddr, f.failed)
	}
}

func TestListParsing(t *testing.T) {
	t.Setenv(EnvKafkaBrokers, " 127.0.0.1:29092, ,127.0.0.2:59092 ")
	t.Setenv(EnvCQLHosts, "127.0.0.1:29042")
	t.Setenv(EnvOpenSearchURL, "http://127.0.0.1:29200/")
	t.Setenv(EnvPostgresURL, "postgres://u:p@127.0.0.1:25432/db")
	t.Setenv(EnvMailpitURL, "http://127.0.0.1:28025/")
	if got := strings.Join(KafkaBrokers(t), "|"); got != "127.0.0.1:29092|127.0.0.2:59092" {
		t.Errorf("KafkaBrokers = %q", got)
	}
	if got := CQLHosts(t); len(got) != 1 || got[0] != "127.0.0.1:29042" {
		t.Errorf("CQLHosts = %q", got)
	}
	if got := OpenSearchURL(t); got != "http://127.0.0.1:29200" {
		t.Errorf("OpenSearchURL = %q", got)
	}
	if got := PostgresURL(t); got != "postgres://u:p@127.0.0.1:25432/db" {
		t.Errorf("PostgresURL = %q", got)
	}
	if got := MailpitURL(t); got != "http://127.0.0.1:28025" {
		t.Errorf("MailpitURL = %q", got)
	}

	// A list of only separators counts as missing.
	t.Setenv(EnvKafkaBrokers, " , ")
	t.Setenv(EnvRequireServers, "1")
	if f, _ := call(func(tb testing.TB) string { return strings.Join(KafkaBrokers(tb), ",") }); !f.failed {
		t.Errorf("an empty broker list must count as missing")
	}
}
