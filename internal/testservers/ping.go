package testservers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/smtp"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/jackc/pgx/v5"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Ping functions make one real request to a server and report what it
// answered. compose/devstack polls them (through cmd/devstack-probe) to know
// when a server is ready, and this package's tests use them to prove that
// every server of `make test` is reachable.

// PingPostgres connects with pgx and runs `select 1`; it returns the server
// version.
func PingPostgres(ctx context.Context, url string) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", fmt.Errorf("postgres connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		return "", fmt.Errorf("postgres select 1: %w", err)
	}
	if one != 1 {
		return "", fmt.Errorf("postgres select 1 returned %d", one)
	}
	return conn.PgConn().ParameterStatus("server_version"), nil
}

// PingRedis sends PING with go-redis and returns the server's redis_version.
func PingRedis(ctx context.Context, addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 5 * time.Second})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		return "", fmt.Errorf("redis ping: %w", err)
	}
	info, err := c.InfoMap(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("redis info: %w", err)
	}
	return info["Server"]["redis_version"], nil
}

// PingKafka asks for cluster metadata with franz-go's kadm and requires at
// least one live broker; it returns a short description of the cluster.
func PingKafka(ctx context.Context, brokers []string) (string, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DialTimeout(5*time.Second),
		kgo.RequestRetries(1),
	)
	if err != nil {
		return "", fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return "", fmt.Errorf("kafka metadata: %w", err)
	}
	if len(md.Brokers) == 0 {
		return "", errors.New("kafka metadata: no broker registered yet")
	}
	return fmt.Sprintf("cluster %s, %d broker(s), controller %d", md.Cluster, len(md.Brokers), md.Controller), nil
}

// PingCQL opens a gocql session and reads release_version from system.local.
func PingCQL(ctx context.Context, hosts []string) (string, error) {
	cluster := gocql.NewCluster(hosts...)
	cluster.ProtoVersion = 4
	cluster.ConnectTimeout = 5 * time.Second
	cluster.Timeout = 5 * time.Second
	cluster.Consistency = gocql.One
	cluster.DisableInitialHostLookup = true
	cluster.Logger = log.New(io.Discard, "", 0)
	sess, err := cluster.CreateSession()
	if err != nil {
		return "", fmt.Errorf("cql session: %w", err)
	}
	defer sess.Close()
	var version string
	if err := sess.Query("select release_version from system.local").WithContext(ctx).Scan(&version); err != nil {
		return "", fmt.Errorf("cql query: %w", err)
	}
	return version, nil
}

// PingOpenSearch GETs /_cluster/health?wait_for_status=yellow with
// opensearch-go and returns the cluster status.
func PingOpenSearch(ctx context.Context, url string) (string, error) {
	c, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{
		Addresses:    []string{url},
		DisableRetry: true,
		Transport:    &http.Transport{ResponseHeaderTimeout: 30 * time.Second},
	}})
	if err != nil {
		return "", fmt.Errorf("opensearch client: %w", err)
	}
	wait := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl) - 500*time.Millisecond; d > time.Second && d < wait {
			wait = d
		}
	}
	h, err := c.Cluster.Health(ctx, &opensearchapi.ClusterHealthReq{Params: opensearchapi.ClusterHealthParams{
		WaitForStatus: "yellow",
		Timeout:       wait,
	}})
	if err != nil {
		return "", fmt.Errorf("opensearch cluster health: %w", err)
	}
	if h.TimedOut || (h.Status != "green" && h.Status != "yellow") {
		return "", fmt.Errorf("opensearch cluster health: status %q, timed out %v", h.Status, h.TimedOut)
	}
	return fmt.Sprintf("cluster %s status %s, %d node(s)", h.ClusterName, h.Status, h.NumberOfNodes), nil
}

// PingSMTP dials an SMTP server, reads its greeting, says EHLO and QUIT
// (net/smtp); it returns the greeting's text.
func PingSMTP(ctx context.Context, addr string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("smtp dial: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	host, _, _ := net.SplitHostPort(addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return "", fmt.Errorf("smtp greeting: %w", err)
	}
	if err := c.Hello("devstack-probe"); err != nil {
		return "", fmt.Errorf("smtp ehlo: %w", err)
	}
	ok, ext := c.Extension("SIZE")
	if err := c.Quit(); err != nil {
		return "", fmt.Errorf("smtp quit: %w", err)
	}
	if ok {
		return "EHLO answered, SIZE " + ext, nil
	}
	return "EHLO answered", nil
}

// PingMailpit GETs Mailpit's /api/v1/info and returns its version and the
// number of messages it holds.
func PingMailpit(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/api/v1/info", nil)
	if err != nil {
		return "", fmt.Errorf("mailpit info: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("mailpit info: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("mailpit info: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var info struct {
		Version  string
		Messages int
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err != nil {
		return "", fmt.Errorf("mailpit info: %w", err)
	}
	return fmt.Sprintf("Mailpit %s, %d message(s)", info.Version, info.Messages), nil
}
