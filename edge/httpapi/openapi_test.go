package httpapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"

	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/client"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
)

// Every example in the document matches its schema, and the request
// examples are accepted by the decoders.
func TestOpenAPIExamples(t *testing.T) {
	c := loadContract(t)
	strict := func(v any) func([]byte) error {
		return func(b []byte) error { return decodeStrict("test", b, v) }
	}
	decoders := map[string]func([]byte) error{
		"createHold":               func(b []byte) error { _, err := decodeHold(b); return err },
		"createVenue":              func(b []byte) error { _, err := decodeVenue(b); return err },
		"createEvent":              func(b []byte) error { _, err := decodeEvent(b); return err },
		"signUp":                   strict(&signUpBody{}),
		"verifyEmail":              strict(&verifyBody{}),
		"resendVerification":       strict(&emailBody{}),
		"forgotPassword":           strict(&emailBody{}),
		"resetPassword":            strict(&resetBody{}),
		"signIn":                   strict(&signInBody{}),
		"signInSecondFactor":       strict(&secondFactorBody{}),
		"signOut":                  strict(&signOutBody{}),
		"changePassword":           strict(&passwordBody{}),
		"totpConfirm":              strict(&codeBody{}),
		"totpDisable":              strict(&stepUpBody{}),
		"recoveryCodes":            strict(&stepUpBody{}),
		"passkeyRemove":            strict(&stepUpBody{}),
		"passkeySecondFactorBegin": strict(&mfaBody{}),
		"setRoles":                 strict(&rolesBody{}),
		"createClient":             strict(&clientBody{}),
		"disableClient":            strict(&disabledBody{}),
		"passkeyRegister":          passkeyFinish,
		"passkeySignIn":            passkeyFinish,
		"passkeySecondFactor":      passkeyFinish,
		"token":                    oauthFormExample("grant_type"),
		"introspect":               oauthFormExample("token"),
	}
	n := 0
	checkContent := func(where string, content *orderedmap.Map[string, *v3.MediaType], decode func([]byte) error) {
		for mt, media := range content.FromOldest() {
			if media.Examples == nil || media.Schema == nil {
				continue
			}
			for name, ex := range media.Examples.FromOldest() {
				var v any
				if err := ex.Value.Decode(&v); err != nil {
					t.Fatalf("%s %s %s: %v", where, mt, name, err)
				}
				b, _ := json.Marshal(v)
				n++
				if ok, msg := c.valid(media.Schema.Schema(), b); !ok {
					t.Errorf("%s %s example %s does not match its schema: %s", where, mt, name, msg)
				}
				if decode != nil {
					if err := decode(b); err != nil {
						t.Errorf("%s example %s is refused: %v", where, name, err)
					}
				}
			}
		}
	}
	for path, item := range c.model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			where := method + " " + path
			if op.RequestBody != nil {
				dec := decoders[op.OperationId]
				if dec == nil {
					t.Errorf("%s: no decoder for %s", where, op.OperationId)
				}
				checkContent(where+" request", op.RequestBody.Content, dec)
			}
			for code, resp := range op.Responses.Codes.FromOldest() {
				if resp.Content != nil {
					checkContent(where+" "+code, resp.Content, nil)
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d examples checked", n)
	}
}

// The HoldRequest schema and decodeHold agree on what is a hold request.
func TestHoldRequestSchemaMatchesDecoder(t *testing.T) {
	c := loadContract(t)
	s := c.schema(t, "HoldRequest")
	for _, body := range []string{
		`{"seats":["101-A-1","101-A-2"]}`,
		`{"seats":["101-A-1"],"ttl_seconds":300}`,
		`{"seats":["x"],"zone":"","quantity":0}`,
		`{"zone":"floor","quantity":2}`,
		`{"seats":null,"zone":"floor","quantity":1}`,
		`{"seats":[],"zone":"floor","quantity":10,"ttl_seconds":0}`,
		`{"seats":` + seatList(10) + `}`,
	} {
		if _, err := decodeHold([]byte(body)); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if ok, msg := c.valid(s, []byte(body)); !ok {
			t.Errorf("%s: accepted by decodeHold, refused by the schema: %s", body, msg)
		}
	}
	for _, body := range []string{
		`{}`, `[]`, `"seats"`, // (the schema validator passes a bare null without looking)
		`{"seats":["a"],"x":1}`,
		`{"seats":"a"}`, `{"seats":[1]}`,
		`{"zone":"floor","quantity":"2"}`, `{"zone":"floor","quantity":1.5}`,
		`{"seats":["a"],"zone":"floor"}`, `{"seats":["a"],"quantity":1}`,
		`{"seats":[]}`, `{"seats":` + seatList(11) + `}`, `{"seats":["a","b","a"]}`, `{"seats":[""]}`,
		`{"zone":"Floor","quantity":1}`, `{"zone":"floor","quantity":0}`, `{"zone":"floor","quantity":11}`,
		`{"quantity":1}`, `{"zone":"floor"}`, `{"ttl_seconds":60}`,
		`{"seats":["a"],"ttl_seconds":-1}`, `{"seats":["a"],"ttl_seconds":86401}`,
	} {
		if _, err := decodeHold([]byte(body)); err == nil {
			t.Fatalf("%s: accepted", body)
		}
		if ok, _ := c.valid(s, []byte(body)); ok {
			t.Errorf("%s: refused by decodeHold, accepted by the schema", body)
		}
	}
}

// passkeyFinish decodes a passkey ceremony's finish body as the edge does.
func passkeyFinish(b []byte) error {
	app := fiber.New()
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	c.Request().SetBody(b)
	_, err := decodePasskeyFinish(c, "test")
	return err
}

// oauthFormExample checks a form example of the token or introspection
// endpoint (given as a JSON object of strings): it has the required
// parameter, and a grant type is one the endpoint takes.
func oauthFormExample(required string) func([]byte) error {
	return func(b []byte) error {
		var form map[string]string
		if err := json.Unmarshal(b, &form); err != nil {
			return err
		}
		if form[required] == "" {
			return fmt.Errorf("no %s", required)
		}
		if g, ok := form["grant_type"]; ok && g != "refresh_token" && g != client.GrantClientCredentials {
			return fmt.Errorf("grant_type %q", g)
		}
		if form["grant_type"] == "refresh_token" && form["refresh_token"] == "" {
			return fmt.Errorf("a refresh_token grant without refresh_token")
		}
		return nil
	}
}

// The accounts and OAuth schemas of openapi.json are the Go types the
// edge decodes and answers: the same properties, and required exactly
// when the field is always sent (no omitempty).
func TestAccountSchemasMatchGoTypes(t *testing.T) {
	c := loadContract(t)
	for name, v := range map[string]any{
		// Answers.
		"Accepted":                    Accepted{},
		"SignedIn":                    SignedIn{},
		"MFARequired":                 MFARequired{},
		"TokenResponse":               TokenAnswer{},
		"OAuthError":                  OAuthError{},
		"Introspection":               client.Introspection{},
		"AuthorizationServerMetadata": client.Metadata{},
		"ClientCreated":               idapi.ClientCreated{},
		"Profile":                     auth.Profile{},
		"PasskeyInfo":                 auth.PasskeyInfo{},
		"Session":                     idapi.SessionInfo{},
		"Sessions":                    idapi.Sessions{},
		"TOTPEnrolment":               TOTPBegun{},
		"RecoveryCodes":               idapi.RecoveryCodes{},
		"PasskeyBegun":                PasskeyBegun{},
		// Request bodies.
		"SignUpRequest":         signUpBody{},
		"EmailRequest":          emailBody{},
		"VerifyRequest":         verifyBody{},
		"ResetRequest":          resetBody{},
		"SignInRequest":         signInBody{},
		"SecondFactorRequest":   secondFactorBody{},
		"SignOutRequest":        signOutBody{},
		"CodeRequest":           codeBody{},
		"StepUpRequest":         stepUpBody{},
		"StepUp":                auth.StepUp{},
		"PasswordChangeRequest": passwordBody{},
		"RolesRequest":          rolesBody{},
		"ClientRequest":         clientBody{},
		"DisabledRequest":       disabledBody{},
		"MFATicketRequest":      mfaBody{},
		"PasskeyFinishRequest":  passkeyFinishBody{},
	} {
		schemaMatchesType(t, name, c.schema(t, name), reflect.TypeOf(v))
	}
}
