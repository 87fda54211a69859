package natsapi

import (
	"context"
	"encoding/json"

	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/passkey"
)

// Passkey operations (the subject is Prefix + op).
const (
	OpPasskeyRegisterBegin  = "passkey_register_begin"
	OpPasskeyRegisterFinish = "passkey_register_finish"
	OpPasskeySignInBegin    = "passkey_signin_begin"
	OpPasskeySignInFinish   = "passkey_signin_finish"
	OpPasskeyMFABegin       = "passkey_mfa_begin"
	OpPasskeyMFAFinish      = "passkey_mfa_finish"
	OpPasskeyRemove         = "passkey_remove"
)

// PasskeyRequest carries a ceremony: the user's access token (registering,
// removing), the MFA ticket (second factor), the sealed state and the
// browser's credential (finishing).
type PasskeyRequest struct {
	AccessToken string          `json:"access_token,omitempty"`
	MFA         string          `json:"mfa_token,omitempty"`
	State       string          `json:"state,omitempty"`
	Credential  json.RawMessage `json:"credential,omitempty"`
	Name        string          `json:"name,omitempty"`
	PasskeyID   string          `json:"passkey_id,omitempty"`
	StepUp      auth.StepUp     `json:"step_up"`
	ClientID    string          `json:"client_id,omitempty"`
	Seen        Seen            `json:"seen"`
}

func (srv Server) passkeyHandlers() map[string]func(context.Context, PasskeyRequest) (any, error) {
	a := srv.Auth
	return map[string]func(context.Context, PasskeyRequest) (any, error){
		OpPasskeyRegisterBegin: func(ctx context.Context, r PasskeyRequest) (any, error) {
			c, err := srv.user(r.AccessToken)
			if err != nil {
				return nil, err
			}
			return a.BeginPasskeyRegistration(ctx, c.Subject)
		},
		OpPasskeyRegisterFinish: func(ctx context.Context, r PasskeyRequest) (any, error) {
			c, err := srv.user(r.AccessToken)
			if err != nil {
				return nil, err
			}
			return a.FinishPasskeyRegistration(ctx, c.Subject, r.State, r.Credential, r.Name)
		},
		OpPasskeySignInBegin: func(context.Context, PasskeyRequest) (any, error) {
			return a.BeginPasskeySignIn()
		},
		OpPasskeySignInFinish: func(ctx context.Context, r PasskeyRequest) (any, error) {
			return a.FinishPasskeySignIn(ctx, r.State, r.Credential, r.ClientID, r.Seen.session())
		},
		OpPasskeyMFABegin: func(ctx context.Context, r PasskeyRequest) (any, error) {
			return a.BeginPasskeySecondFactor(ctx, r.MFA)
		},
		OpPasskeyMFAFinish: func(ctx context.Context, r PasskeyRequest) (any, error) {
			return a.FinishPasskeySecondFactor(ctx, r.MFA, r.State, r.Credential, r.Seen.session())
		},
		OpPasskeyRemove: func(ctx context.Context, r PasskeyRequest) (any, error) {
			c, err := srv.user(r.AccessToken)
			if err != nil {
				return nil, err
			}
			return ok(a.RemovePasskey(ctx, c.Subject, r.PasskeyID, r.StepUp))
		},
	}
}

// Started is a ceremony begun, as the service answers it.
type Started = passkey.Started
