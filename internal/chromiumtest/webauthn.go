package chromiumtest

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// VirtualAuthenticator gives the tab of ctx a platform authenticator (the
// DevTools WebAuthn domain) that keeps discoverable credentials (passkeys)
// and verifies its user at once, with no dialog: pages' calls of
// navigator.credentials.create and get succeed as on a device whose
// screen lock the user passed. It lives as long as the tab, across
// navigations.
func VirtualAuthenticator(t testing.TB, ctx context.Context) webauthn.AuthenticatorID {
	t.Helper()
	id, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (webauthn.AuthenticatorID, error) {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return "", err
		}
		r, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
				HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
		return r.AuthenticatorID, err
	})
	if err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
	return id
}

// Credentials returns the credentials the virtual authenticator holds.
func Credentials(t testing.TB, ctx context.Context, id webauthn.AuthenticatorID) []*webauthn.Credential {
	t.Helper()
	creds, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]*webauthn.Credential, error) {
		r, err := cdp.Call(ctx, tg, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
		return r.Credentials, err
	})
	if err != nil {
		t.Fatalf("credentials of the virtual authenticator: %v", err)
	}
	return creds
}
