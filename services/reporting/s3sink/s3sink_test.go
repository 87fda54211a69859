package s3sink_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/reporting"
	"github.com/ticketing/ticketing/services/reporting/s3sink"
)

// s3Server is an S3 protocol server on loopback (gofakes3): the sink talks
// to it over HTTP with real S3 requests and signatures.
func s3Server(t *testing.T) (endpoint string, cl *minio.Client) {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	endpoint = strings.TrimPrefix(srv.URL, "http://")
	cl, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4("key", "secret", ""), Secure: false, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.MakeBucket(context.Background(), "exports", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return endpoint, cl
}

func TestPutReplacesTheObject(t *testing.T) {
	ctx := context.Background()
	endpoint, cl := s3Server(t)
	var c s3sink.Config
	if err := c.ParseURL("s3://exports/finance"); err != nil {
		t.Fatal(err)
	}
	c.Endpoint, c.AccessKey, c.SecretKey, c.Insecure, c.Region = endpoint, "key", "secret", true, "us-east-1"
	sink, err := s3sink.New(c)
	if err != nil {
		t.Fatal(err)
	}
	var _ reporting.Sink = sink
	for _, body := range []string{"first\n", "second, replacing it\n"} {
		if err := sink.Put(ctx, "finance-2026-12-01-org.csv", []byte(body)); err != nil {
			t.Fatal(err)
		}
		obj, err := cl.GetObject(ctx, "exports", "finance/finance-2026-12-01-org.csv", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		if err != nil || string(got) != body {
			t.Fatalf("object holds %q (%v), want %q", got, err, body)
		}
	}
	if err := sink.Put(ctx, "../escape.csv", []byte("x")); !errs.Is(errs.Invalid, err) {
		t.Fatalf("a name with a path: %v, want invalid", err)
	}
	c.Bucket = "missing"
	missing, _ := s3sink.New(c)
	if err := missing.Put(ctx, "a.csv", []byte("x")); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("a missing bucket: %v, want unavailable", err)
	}
}

func TestConfig(t *testing.T) {
	for raw, ok := range map[string]bool{"s3://b/p/q": true, "s3://b": true, "http://b/p": false, "s3:///p": false, "::": false} {
		var c s3sink.Config
		if err := c.ParseURL(raw); (err == nil) != ok {
			t.Errorf("ParseURL(%q): %v", raw, err)
		}
	}
	for name, c := range map[string]s3sink.Config{
		"no endpoint":   {Bucket: "b"},
		"a URL":         {Endpoint: "http://x:9000", Bucket: "b"},
		"no bucket":     {Endpoint: "x:9000"},
		"half the keys": {Endpoint: "x:9000", Bucket: "b", AccessKey: "a"},
		"dots":          {Endpoint: "x:9000", Bucket: "b", Prefix: "../up"},
	} {
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}
