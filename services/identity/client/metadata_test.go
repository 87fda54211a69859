package client_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/client"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/name, or writes it there with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -update to accept):\ngot\n%s\nwant\n%s", path, got, want)
	}
}

func TestMetadata(t *testing.T) {
	m, err := client.NewMetadata(client.MetadataConfig{
		Issuer:               "https://id.ticketing.example",
		TokenPath:            "/oauth/token",
		IntrospectionPath:    "/oauth/introspect",
		JWKSPath:             "/.well-known/jwks.json",
		ServiceDocumentation: "https://developers.ticketing.example/partners",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "metadata.json", append(b, '\n'))
}

func TestMetadataMinimal(t *testing.T) {
	// A trailing slash stays in the issuer (it must be the tokens' iss
	// byte for byte) but not in the endpoints; http is for loopback.
	m, err := client.NewMetadata(client.MetadataConfig{Issuer: "http://127.0.0.1:8080/id/", TokenPath: "/token", JWKSPath: "/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Issuer != "http://127.0.0.1:8080/id/" || m.TokenEndpoint != "http://127.0.0.1:8080/id/token" ||
		m.JWKSURI != "http://127.0.0.1:8080/id/jwks" || m.IntrospectionEndpoint != "" {
		t.Fatalf("metadata %+v", m)
	}
	b, _ := json.Marshal(m)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["response_types_supported"]) != "[]" {
		t.Fatalf("response_types_supported = %s, want [] (required, empty)", raw["response_types_supported"])
	}
	for _, k := range []string{"introspection_endpoint", "introspection_endpoint_auth_methods_supported", "service_documentation"} {
		if _, ok := raw[k]; ok {
			t.Errorf("%s present without introspection: %s", k, b)
		}
	}
}

func TestMetadataRefused(t *testing.T) {
	ok := client.MetadataConfig{Issuer: "https://id.example", TokenPath: "/token", JWKSPath: "/jwks"}
	for name, f := range map[string]func(*client.MetadataConfig){
		"no issuer":         func(c *client.MetadataConfig) { c.Issuer = "" },
		"relative issuer":   func(c *client.MetadataConfig) { c.Issuer = "/id" },
		"http issuer":       func(c *client.MetadataConfig) { c.Issuer = "http://id.example" },
		"http lookalike":    func(c *client.MetadataConfig) { c.Issuer = "http://localhost.example" },
		"query":             func(c *client.MetadataConfig) { c.Issuer = "https://id.example?x=1" },
		"empty query":       func(c *client.MetadataConfig) { c.Issuer = "https://id.example?" },
		"fragment":          func(c *client.MetadataConfig) { c.Issuer = "https://id.example#x" },
		"empty fragment":    func(c *client.MetadataConfig) { c.Issuer = "https://id.example#" },
		"user":              func(c *client.MetadataConfig) { c.Issuer = "https://a@id.example" },
		"no token path":     func(c *client.MetadataConfig) { c.TokenPath = "" },
		"relative path":     func(c *client.MetadataConfig) { c.TokenPath = "token" },
		"path with query":   func(c *client.MetadataConfig) { c.JWKSPath = "/jwks?x" },
		"bad introspection": func(c *client.MetadataConfig) { c.IntrospectionPath = "introspect" },
		"bad docs":          func(c *client.MetadataConfig) { c.ServiceDocumentation = "ftp://docs.example" },
	} {
		c := ok
		f(&c)
		if _, err := client.NewMetadata(c); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if _, err := client.NewMetadata(ok); err != nil {
		t.Fatalf("the valid config: %v", err)
	}
}

func TestMetadataURL(t *testing.T) {
	for issuer, want := range map[string]string{
		"https://id.example":          "https://id.example/.well-known/oauth-authorization-server",
		"https://id.example/":         "https://id.example/.well-known/oauth-authorization-server",
		"https://example.com/tenant1": "https://example.com/.well-known/oauth-authorization-server/tenant1",
	} {
		if got, err := client.MetadataURL(issuer); err != nil || got != want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", issuer, got, err, want)
		}
	}
	if _, err := client.MetadataURL("id.example"); err == nil {
		t.Error("MetadataURL of a relative URL succeeded")
	}
}
