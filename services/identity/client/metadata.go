package client

import (
	"net"
	"net/url"
	"strings"

	"github.com/ticketing/ticketing/internal/errs"
)

// WellKnownPath is where RFC 8414 metadata is served, below the issuer's
// host (see MetadataURL).
const WellKnownPath = "/.well-known/oauth-authorization-server"

// Metadata is the authorization server metadata (RFC 8414 section 2), to be
// sent as JSON. There is no authorization endpoint (no grant here uses
// one), so response_types_supported is the empty list.
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	ScopesSupported                           []string `json:"scopes_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint,omitempty"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	ServiceDocumentation                      string   `json:"service_documentation,omitempty"`
}

// MetadataConfig is what NewMetadata builds from.
type MetadataConfig struct {
	// Issuer is the issuer identifier, which must be the access tokens'
	// "iss" (token.Config.Issuer) byte for byte, and the base of every
	// endpoint: an https URL without query or fragment (http only for a
	// loopback host, for development). Required.
	Issuer string
	// TokenPath, IntrospectionPath and JWKSPath are the endpoints' paths
	// below Issuer, each starting with '/'. TokenPath and JWKSPath are
	// required; an empty IntrospectionPath leaves introspection out.
	TokenPath, IntrospectionPath, JWKSPath string
	// ServiceDocumentation is a URL of documentation for partners;
	// optional.
	ServiceDocumentation string
}

// NewMetadata builds the metadata of the client credentials authorization
// server at c.Issuer, or an errs.Invalid error naming what is wrong.
func NewMetadata(c MetadataConfig) (Metadata, error) {
	const op = "client.metadata"
	iss, err := url.Parse(c.Issuer)
	if err != nil || iss.Host == "" || iss.User != nil || iss.RawQuery != "" || iss.ForceQuery || iss.Fragment != "" || strings.Contains(c.Issuer, "#") {
		return Metadata{}, errs.E(op, errs.Invalid, "issuer must be an absolute URL without user, query or fragment")
	}
	if iss.Scheme != "https" && (iss.Scheme != "http" || !loopback(iss.Hostname())) {
		return Metadata{}, errs.E(op, errs.Invalid, "issuer must be an https URL (http only on a loopback host)")
	}
	base := strings.TrimRight(c.Issuer, "/")
	endpoint := func(name, path string, required bool) (string, error) {
		if path == "" && !required {
			return "", nil
		}
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?# \t") {
			return "", errs.Errorf(op, errs.Invalid, "%s path must start with '/' and have no query or fragment", name)
		}
		return base + path, nil
	}
	m := Metadata{
		Issuer:                            c.Issuer,
		ScopesSupported:                   KnownScopes(),
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               []string{GrantClientCredentials},
		TokenEndpointAuthMethodsSupported: []string{AuthClientSecretBasic, AuthClientSecretPost},
		ServiceDocumentation:              c.ServiceDocumentation,
	}
	if m.TokenEndpoint, err = endpoint("token", c.TokenPath, true); err != nil {
		return Metadata{}, err
	}
	if m.JWKSURI, err = endpoint("JWKS", c.JWKSPath, true); err != nil {
		return Metadata{}, err
	}
	if m.IntrospectionEndpoint, err = endpoint("introspection", c.IntrospectionPath, false); err != nil {
		return Metadata{}, err
	}
	if m.IntrospectionEndpoint != "" {
		m.IntrospectionEndpointAuthMethodsSupported = []string{AuthClientSecretBasic, AuthClientSecretPost}
	}
	if c.ServiceDocumentation != "" {
		if u, err := url.Parse(c.ServiceDocumentation); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return Metadata{}, errs.E(op, errs.Invalid, "service documentation must be an http(s) URL")
		}
	}
	return m, nil
}

// MetadataURL is where a client fetches the metadata of issuer (RFC 8414
// section 3.1): the well-known path inserted between the host and the
// issuer's path, if it has one.
func MetadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return "", errs.E("client.metadata", errs.Invalid, "issuer must be an absolute URL")
	}
	return u.Scheme + "://" + u.Host + WellKnownPath + strings.TrimRight(u.EscapedPath(), "/"), nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
