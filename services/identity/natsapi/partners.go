package natsapi

import (
	"context"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/client"
	"github.com/ticketing/ticketing/services/identity/token"
)

// Partner operations (the subject is Prefix + op).
const (
	OpConfig        = "config"
	OpClientToken   = "client_token"
	OpIntrospect    = "introspect"
	OpClientCreate  = "client_create"
	OpClientDisable = "client_disable"
)

// Partners is what the partner operations need; nil in Server: they
// answer errs.Unavailable.
type Partners struct {
	Clients client.Store
	Issuer  *token.Issuer
}

// Config is the access tokens' issuer and audience: the edges check
// tokens against them and publish the issuer in their metadata.
type Config struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
}

// OAuthRequest is a form request of the token or introspection endpoint,
// forwarded as the edge received it.
type OAuthRequest struct {
	Authorization string `json:"authorization,omitempty"`
	Body          []byte `json:"body"`
}

// ClientToken is a client credentials grant's access token.
type ClientToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// ClientRequest creates (Name, Scopes) or disables (ClientID, Disabled) a
// partner client; an admin's request.
type ClientRequest struct {
	AccessToken string   `json:"access_token"`
	Name        string   `json:"name,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
	ClientID    string   `json:"client_id,omitempty"`
	Disabled    bool     `json:"disabled,omitempty"`
}

// ClientCreated is a new client with its secret, shown once.
type ClientCreated struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Name         string   `json:"name"`
	Scopes       []string `json:"scopes"`
}

func (srv Server) partners(op string) (*Partners, error) {
	if srv.Partners == nil || srv.Partners.Clients == nil {
		return nil, errs.E(op, errs.Unavailable, "partner clients are not available")
	}
	return srv.Partners, nil
}

// clientToken runs the client credentials grant (RFC 6749 §4.4).
func (srv Server) clientToken(ctx context.Context, r OAuthRequest) (any, error) {
	p, err := srv.partners("identity.client_token")
	if err != nil {
		return nil, err
	}
	req, err := client.ParseTokenRequest(r.Authorization, r.Body)
	if err != nil {
		return nil, err
	}
	c, err := client.AuthenticateID(ctx, p.Clients, req.ClientID, req.Secret)
	if err != nil {
		return nil, err
	}
	scope, err := client.GrantScope(c, req.Scope)
	if err != nil {
		return nil, err
	}
	at, claims, err := p.Issuer.Issue(client.IssueRequest(c, scope), srv.Now())
	if err != nil {
		return nil, err
	}
	return ClientToken{AccessToken: at, TokenType: client.TokenTypeBearer, ExpiresIn: int(claims.Expiry.Sub(claims.IssuedAt) / time.Second), Scope: claims.Scope}, nil
}

// introspect answers RFC 7662 for an authenticated client; a token of a
// client disabled since is inactive.
func (srv Server) introspect(ctx context.Context, r OAuthRequest) (any, error) {
	p, err := srv.partners("identity.introspect")
	if err != nil {
		return nil, err
	}
	req, err := client.ParseIntrospectionRequest(r.Authorization, r.Body)
	if err != nil {
		return nil, err
	}
	if _, err := client.AuthenticateID(ctx, p.Clients, req.ClientID, req.Secret); err != nil {
		return nil, err
	}
	claims, err := srv.Verifier.Verify(req.Token, srv.Now())
	if err == nil && client.ValidID(claims.Subject) {
		c, cerr := p.Clients.ByID(ctx, claims.Subject)
		if cerr != nil || c.Disabled {
			err = errs.E("identity.introspect", errs.Unauthorized, "the client is disabled or gone")
		}
	}
	return client.Introspect(claims, err), nil
}

func (srv Server) adminClaims(at string) error {
	c, err := srv.user(at)
	if err != nil {
		return err
	}
	if !c.HasScope("admin") {
		return errs.E("identity.clients", errs.Forbidden, "only an admin may manage partner clients")
	}
	return nil
}

func (srv Server) createClient(ctx context.Context, r ClientRequest) (any, error) {
	p, err := srv.partners("identity.client_create")
	if err != nil {
		return nil, err
	}
	if err := srv.adminClaims(r.AccessToken); err != nil {
		return nil, err
	}
	secret, hash := client.NewSecret()
	c, err := p.Clients.Create(ctx, client.Client{ID: client.NewID(), Name: r.Name, Scopes: r.Scopes,
		SecretHashes: []string{hash}, CreatedAt: srv.Now().UTC()})
	if err != nil {
		return nil, err
	}
	return ClientCreated{ClientID: c.ID, ClientSecret: secret, Name: c.Name, Scopes: c.Scopes}, nil
}

func (srv Server) disableClient(ctx context.Context, r ClientRequest) (any, error) {
	p, err := srv.partners("identity.client_disable")
	if err != nil {
		return nil, err
	}
	if err := srv.adminClaims(r.AccessToken); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		c, err := p.Clients.ByID(ctx, r.ClientID)
		if err != nil {
			return nil, err
		}
		c.Disabled = r.Disabled
		_, err = p.Clients.Update(ctx, c)
		if errs.Is(errs.Conflict, err) && attempt < 8 {
			continue
		}
		return struct{}{}, err
	}
}
