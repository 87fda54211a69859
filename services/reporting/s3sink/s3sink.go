// Package s3sink writes the finance exports of package reporting to an
// S3-compatible bucket (AWS S3, MinIO, Ceph, R2, …) with minio-go. An object
// PUT is atomic: a reader sees the old export or the new one, never a part,
// which is what reporting.Sink asks for.
package s3sink

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/reporting"
)

const opConfig = "reporting.s3sink.config"

// Config says where exports go.
type Config struct {
	// Endpoint is the S3 service's host:port, e.g. "s3.amazonaws.com" or
	// "minio.internal:9000". Required.
	Endpoint string
	// Bucket must exist. Required.
	Bucket string
	// Prefix is prepended to every object name ("finance/"). Optional.
	Prefix string
	// AccessKey and SecretKey; empty: the AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY environment variables (or MINIO_ equivalents).
	AccessKey, SecretKey string
	// Region; empty: asked of the service.
	Region string
	// Insecure uses http instead of https (a service on loopback or in a
	// private network).
	Insecure bool
}

// ParseURL reads "s3://bucket/prefix" into Bucket and Prefix.
func (c *Config) ParseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return errs.Errorf(opConfig, errs.Invalid, "%q: want s3://bucket[/prefix]", raw)
	}
	c.Bucket = u.Host
	c.Prefix = strings.TrimPrefix(u.Path, "/")
	return nil
}

// Validate checks the config.
func (c *Config) Validate() error {
	switch {
	case c.Endpoint == "" || strings.Contains(c.Endpoint, "/"):
		return errs.Errorf(opConfig, errs.Invalid, "endpoint %q: want host:port", c.Endpoint)
	case c.Bucket == "":
		return errs.E(opConfig, errs.Invalid, "a bucket is required")
	case strings.Contains(c.Prefix, ".."):
		return errs.Errorf(opConfig, errs.Invalid, "prefix %q must not contain ..", c.Prefix)
	case (c.AccessKey == "") != (c.SecretKey == ""):
		return errs.E(opConfig, errs.Invalid, "give both the access key and the secret key, or neither")
	}
	return nil
}

// Sink is a reporting.Sink on a bucket.
type Sink struct {
	cl  *minio.Client
	cfg Config
}

var _ reporting.Sink = (*Sink)(nil)

// New returns a sink; it does not contact the service until the first Put.
func New(c Config) (*Sink, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	creds := credentials.NewStaticV4(c.AccessKey, c.SecretKey, "")
	if c.AccessKey == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.EnvMinio{}})
	}
	cl, err := minio.New(c.Endpoint, &minio.Options{Creds: creds, Secure: !c.Insecure, Region: c.Region})
	if err != nil {
		return nil, errs.E(opConfig, errs.Invalid, "s3 client", err)
	}
	return &Sink{cl: cl, cfg: c}, nil
}

// Put implements reporting.Sink: one object PUT under the prefix.
func (s *Sink) Put(ctx context.Context, name string, body []byte) error {
	if name == "" || path.Base(name) != name || name == "." || name == ".." {
		return errs.Errorf("reporting.s3sink.put", errs.Invalid, "object name %q is not a plain name", name)
	}
	key := path.Join(s.cfg.Prefix, name)
	_, err := s.cl.PutObject(ctx, s.cfg.Bucket, key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/csv; charset=utf-8"})
	if err != nil {
		return errs.E("reporting.s3sink.put", errs.Unavailable, fmt.Sprintf("s3://%s/%s", s.cfg.Bucket, key), err)
	}
	return nil
}
