package httpapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"

	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/client"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
	"github.com/ticketing/ticketing/services/orders"
	ordersapi "github.com/ticketing/ticketing/services/orders/natsapi"
	"github.com/ticketing/ticketing/services/pricing"
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
		"createQuote":              func(b []byte) error { _, err := decodeCart(b, false); return err },
		"createOrder":              func(b []byte) error { _, err := decodeCart(b, true); return err },
		"payOrder":                 func(b []byte) error { _, err := decodePay(b); return err },
		"refundOrder":              func(b []byte) error { _, err := decodeRefund(b); return err },
		"scanTicket":               func(b []byte) error { _, err := decodeScan(b); return err },
		"putPrices":                func(b []byte) error { _, err := pricing.DecodeRules(b); return err },
		"putVoucher":               func(b []byte) error { _, err := pricing.DecodeVoucher(b); return err },
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

// The orders' schemas are the Go types the orders service answers (an
// order is orders.View, a quote pricing.Quote, a price list
// pricing.Rules) and the edge decodes: the same properties, and required
// exactly when the field is always sent.
func TestOrderSchemasMatchGoTypes(t *testing.T) {
	c := loadContract(t)
	for name, v := range map[string]any{
		"Quote":           pricing.Quote{},
		"QuoteLine":       pricing.Line{},
		"Money":           pricing.Money{},
		"AddOnItem":       pricing.AddOnItem{},
		"Order":           orders.View{},
		"OrderHold":       orders.Hold{},
		"OrderLine":       orders.Line{},
		"OrderAmounts":    orders.Amounts{},
		"OrderPayment":    orders.Payment{},
		"OrderTransition": orders.Transition{},
		"OrderList":       ordersapi.List{},
		"PayRequest":      payBody{},
		"RefundRequest":   refundBody{},
		// The price lists' and vouchers' routes.
		"PriceList":       pricing.Rules{},
		"PriceFees":       pricing.Fees{},
		"PriceTax":        pricing.Tax{},
		"PriceAddOn":      pricing.AddOn{},
		"DynamicPricing":  pricing.Dynamic{},
		"SellThroughStep": pricing.SellThroughStep{},
		"DemandStep":      pricing.DemandStep{},
		"PriceBound":      pricing.Bound{},
		"Repricing":       pricing.Repricing{},
		"PriceChange":     pricing.Change{},
		"Voucher":         pricing.Voucher{},
	} {
		schemaMatchesType(t, name, c.schema(t, name), reflect.TypeOf(v))
	}
	// The cart's fields are all optional but the holds: the same
	// properties as the body the edge decodes.
	for _, name := range []string{"QuoteRequest", "OrderRequest"} {
		s := c.schema(t, name)
		var props []string
		for p := range s.Properties.KeysFromOldest() {
			props = append(props, p)
		}
		fields := slices.Sorted(maps.Keys(jsonFields(reflect.TypeOf(cartBody{}))))
		if slices.Sort(props); !slices.Equal(props, fields) || !slices.Equal(s.Required, []string{"holds"}) {
			t.Errorf("%s: properties %v (required %v), the body's fields %v", name, props, s.Required, fields)
		}
	}
	// The enums are the Go constants.
	states := []string{}
	for _, st := range []orders.State{orders.AwaitingPayment, orders.RequiresAction, orders.Paid, orders.Confirmed, orders.Fulfilled,
		orders.Refunding, orders.Refunded, orders.Expired, orders.Cancelled, orders.PaymentFailed} {
		states = append(states, string(st))
	}
	kinds := []string{pricing.LineTicket, pricing.LineAddOn, pricing.LineFee, pricing.LineDiscount, pricing.LineTax}
	late := []string{string(orders.LateReheld), string(orders.LateRefunded)}
	for _, e := range []struct {
		schema *base.Schema
		want   []string
	}{
		{c.schema(t, "OrderState"), states},
		{c.schema(t, "QuoteLine").Properties.GetOrZero("kind").Schema(), kinds},
		{c.schema(t, "OrderLine").Properties.GetOrZero("kind").Schema(), kinds},
		{c.schema(t, "Order").Properties.GetOrZero("late").Schema(), late},
	} {
		var got []string
		for _, n := range e.schema.Enum {
			got = append(got, n.Value)
		}
		if !slices.Equal(got, e.want) {
			t.Errorf("enum %v, want %v", got, e.want)
		}
	}
}

// The request schemas and the edge's decoders agree on what is a quote,
// an order, a payment and a refund request (in ASCII: the schema counts
// characters where the decoders count bytes).
func TestOrderRequestSchemasMatchDecoders(t *testing.T) {
	c := loadContract(t)
	holds := func(n int) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("%q", fmt.Sprintf("arena-finals.0.aaaaaaaaaaaaaa%02d", i))
		}
		return "[" + strings.Join(ids, ",") + "]"
	}
	addOns := func(n int) string {
		lines := make([]string, n)
		for i := range lines {
			lines[i] = fmt.Sprintf(`{"id":"a%d","quantity":1}`, i)
		}
		return "[" + strings.Join(lines, ",") + "]"
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	cart := func(order bool) func([]byte) error {
		return func(b []byte) error { _, err := decodeCart(b, order); return err }
	}
	for _, tc := range []struct {
		schema   string
		decode   func([]byte) error
		accepted []string
		refused  []string
	}{
		{"QuoteRequest", cart(false),
			[]string{
				`{"holds":["h"]}`,
				`{"holds":` + holds(10) + `,"add_ons":` + addOns(10) + `,"voucher":"` + long(64) + `"}`,
				`{"holds":["h"],"add_ons":null,"voucher":"","quote_id":""}`,
				`{"holds":["` + long(200) + `"],"add_ons":[{"id":"parking","quantity":10}]}`,
			},
			[]string{
				`{}`, `[]`, `"holds"`, `{"holds":[]}`, `{"holds":` + holds(11) + `}`, `{"holds":[""]}`, `{"holds":["` + long(201) + `"]}`,
				`{"holds":"h"}`, `{"holds":[1]}`, `{"holds":["h"],"x":1}`,
				`{"holds":["h"],"add_ons":` + addOns(11) + `}`,
				`{"holds":["h"],"add_ons":[{"id":"parking","quantity":0}]}`,
				`{"holds":["h"],"add_ons":[{"id":"parking","quantity":11}]}`,
				`{"holds":["h"],"add_ons":[{"id":"Parking","quantity":1}]}`,
				`{"holds":["h"],"add_ons":[{"id":"parking"}]}`,
				`{"holds":["h"],"add_ons":[{"id":"parking","quantity":1,"price":0}]}`,
				`{"holds":["h"],"voucher":"` + long(65) + `"}`,
				`{"holds":["h"],"quote_id":"q_abc"}`,
			}},
		{"OrderRequest", cart(true),
			[]string{
				`{"holds":["h"]}`,
				`{"holds":["h"],"quote_id":"q_k3xq7m2pa4bz5wcdm4ta"}`,
				`{"holds":["h"],"quote_id":""}`,
				`{"holds":` + holds(10) + `,"add_ons":` + addOns(10) + `,"voucher":"spring10","quote_id":"` + "Q" + long(63) + `"}`,
			},
			[]string{
				`{}`, `{"holds":[]}`, `{"holds":` + holds(11) + `}`, `{"holds":["h"],"quote_id":"q k"}`,
				`{"holds":["h"],"quote_id":"_q"}`, `{"holds":["h"],"quote_id":"q` + long(64) + `"}`,
				`{"holds":["h"],"quote_id":1}`, `{"holds":["h"],"idem_key":"k"}`, `{"holds":["h"],"account":"u_1"}`,
			}},
		{"PayRequest", func(b []byte) error { _, err := decodePay(b); return err },
			[]string{`{"method":"pm_8f14e45fceea167a5a36dedd4bea2543"}`, `{"method":"` + long(64) + `"}`},
			[]string{`{}`, `{"method":""}`, `{"method":"` + long(65) + `"}`, `{"method":1}`,
				`{"method":"pm_1","return_url":"https://evil.example"}`, `{"method":"pm_1","account":"u_1"}`}},
		{"RefundRequest", func(b []byte) error { _, err := decodeRefund(b); return err },
			[]string{`{"reason":"event_cancelled"}`, `{"reason":"` + long(200) + `"}`},
			[]string{`{}`, `{"reason":""}`, `{"reason":"` + long(201) + `"}`, `{"reason":null}`,
				`{"reason":"x","admin":true}`, `{"reason":"x","staff":["org"]}`}},
	} {
		s := c.schema(t, tc.schema)
		for _, body := range tc.accepted {
			if err := tc.decode([]byte(body)); err != nil {
				t.Fatalf("%s %s: %v", tc.schema, body, err)
			}
			if ok, msg := c.valid(s, []byte(body)); !ok {
				t.Errorf("%s %s: accepted by the edge, refused by the schema: %s", tc.schema, body, msg)
			}
		}
		for _, body := range tc.refused {
			if err := tc.decode([]byte(body)); err == nil {
				t.Fatalf("%s %s: accepted", tc.schema, body)
			}
			if ok, _ := c.valid(s, []byte(body)); ok {
				t.Errorf("%s %s: refused by the edge, accepted by the schema", tc.schema, body)
			}
		}
	}
}
