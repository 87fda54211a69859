package httpapi

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/auth"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
)

// Passkey routes: the identity service runs the WebAuthn ceremonies; the
// edge carries the browser's options, the sealed state and the credential.

// PasskeyBegun is a ceremony begun: the options for
// PublicKeyCredential.parseCreationOptionsFromJSON (registration) or
// parseRequestOptionsFromJSON (sign-in), and the state to send back.
type PasskeyBegun struct {
	Options   json.RawMessage `json:"options"`
	State     string          `json:"state"`
	ExpiresAt time.Time       `json:"expires_at"`
	// MFAToken replaces the one given (second factor only).
	MFAToken string `json:"mfa_token,omitempty"`
}

type (
	passkeyFinishBody struct {
		State      string          `json:"state"`
		Credential json.RawMessage `json:"credential"`
		Name       string          `json:"name,omitempty"`
		MFA        string          `json:"mfa_token,omitempty"`
		Cookie     bool            `json:"cookie,omitempty"`
	}
	mfaBody struct {
		MFA string `json:"mfa_token"`
	}
)

// maxPasskeyBody bounds a finish's body (the credential and the state).
const maxPasskeyBody = 80 << 10

func (a *API) passkeyCall(c *fiber.Ctx, op string, req idapi.PasskeyRequest, resp any) error {
	req.AccessToken = callerOf(c).Token
	req.Seen = a.seen(c)
	return a.ask(c, op, req, resp)
}

func (a *API) passkeyBegin(op string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req idapi.PasskeyRequest
		if op == idapi.OpPasskeyMFABegin {
			var b mfaBody
			if err := decodeAuth(c, "edge."+op, &b); err != nil {
				return err
			}
			req.MFA = b.MFA
		}
		if err := a.limitAuth(c, "signin", ""); err != nil {
			return err
		}
		var st auth.PasskeyChallenge
		if err := a.passkeyCall(c, op, req, &st); err != nil {
			return err
		}
		return c.JSON(PasskeyBegun{Options: st.Options, State: st.State, ExpiresAt: st.Expires, MFAToken: st.MFA})
	}
}

func decodePasskeyFinish(c *fiber.Ctx, op string) (passkeyFinishBody, error) {
	var b passkeyFinishBody
	raw, err := requestBody(c, op)
	if err != nil {
		return b, err
	}
	if len(raw) > maxPasskeyBody {
		return b, errs.Errorf(op, errs.TooLarge, "the body is larger than %d bytes", maxPasskeyBody)
	}
	if err := decodeStrict(op, raw, &b); err != nil {
		return b, err
	}
	if b.State == "" || len(b.Credential) == 0 {
		return b, errs.E(op, errs.Invalid, "state and credential are required")
	}
	return b, nil
}

func (a *API) passkeyRegister(c *fiber.Ctx) error {
	const op = "edge.passkey_register"
	b, err := decodePasskeyFinish(c, op)
	if err != nil {
		return err
	}
	var out auth.PasskeyInfo
	if err := a.passkeyCall(c, idapi.OpPasskeyRegisterFinish, idapi.PasskeyRequest{State: b.State, Credential: b.Credential, Name: b.Name}, &out); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

// passkeySignIn finishes a password-less sign-in or a passkey second
// factor (op).
func (a *API) passkeySignIn(op string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		b, err := decodePasskeyFinish(c, "edge."+op)
		if err != nil {
			return err
		}
		if err := a.limitAuth(c, "signin", ""); err != nil {
			return err
		}
		var t auth.Tokens
		if err := a.passkeyCall(c, op, idapi.PasskeyRequest{State: b.State, Credential: b.Credential, MFA: b.MFA}, &t); err != nil {
			return err
		}
		return a.answerTokens(c, t, b.Cookie)
	}
}

func (a *API) passkeyRemove(c *fiber.Ctx) error {
	var b stepUpBody
	if err := decodeAuth(c, "edge.passkey_remove", &b); err != nil {
		return err
	}
	if err := a.limitAuth(c, "signin", ""); err != nil {
		return err
	}
	if err := a.passkeyCall(c, idapi.OpPasskeyRemove, idapi.PasskeyRequest{PasskeyID: c.Params("id"), StepUp: b.StepUp}, &struct{}{}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
