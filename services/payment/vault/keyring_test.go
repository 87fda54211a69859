package vault_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment/vault"
)

var (
	key1 = bytes.Repeat([]byte{0xa1}, 32)
	key2 = bytes.Repeat([]byte{0xb2}, 32)
)

func TestParseKeyring(t *testing.T) {
	for name, text := range map[string]string{
		"hex":         `{"active":"k2","fingerprint":"k1","keys":{"k1":"` + hex.EncodeToString(key1) + `","k2":"` + hex.EncodeToString(key2) + `"}}`,
		"hex upper":   `{"active":"k2","fingerprint":"k1","keys":{"k1":"` + strings.ToUpper(hex.EncodeToString(key1)) + `","k2":"` + hex.EncodeToString(key2) + `"}}`,
		"base64":      `{"active":"k2","fingerprint":"k1","keys":{"k1":"` + base64.StdEncoding.EncodeToString(key1) + `","k2":"` + base64.RawURLEncoding.EncodeToString(key2) + `"}}`,
		"base64 url":  `{"active":"k2","fingerprint":"k1","keys":{"k1":"` + base64.URLEncoding.EncodeToString(key1) + `","k2":"` + base64.RawStdEncoding.EncodeToString(key2) + `"}}`,
		"white space": "{\n \"active\": \"k2\",\n \"fingerprint\": \"k1\",\n \"keys\": {\"k1\": \" " + hex.EncodeToString(key1) + "\", \"k2\": \"" + hex.EncodeToString(key2) + "\"}\n}\n",
	} {
		k, err := vault.ParseKeyring([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k.Active() != "k2" || k.FingerprintID() != "k1" || !slices.Equal(k.IDs(), []string{"k1", "k2"}) || !k.Has("k1") || k.Has("k3") {
			t.Fatalf("%s: %v", name, k)
		}
	}
	// One key: it is the fingerprint key too.
	k, err := vault.ParseKeyring([]byte(`{"active":"only","keys":{"only":"` + hex.EncodeToString(key1) + `"}}`))
	if err != nil || k.FingerprintID() != "only" {
		t.Fatalf("one key: %v, %v", k, err)
	}
}

func TestParseKeyringInvalid(t *testing.T) {
	h1, h2 := hex.EncodeToString(key1), hex.EncodeToString(key2)
	for name, text := range map[string]string{
		"empty":               ``,
		"not json":            `active=k1`,
		"no keys":             `{"active":"k1","keys":{}}`,
		"active missing":      `{"active":"k3","fingerprint":"k1","keys":{"k1":"` + h1 + `","k2":"` + h2 + `"}}`,
		"no active":           `{"keys":{"k1":"` + h1 + `"}}`,
		"fingerprint needed":  `{"active":"k2","keys":{"k1":"` + h1 + `","k2":"` + h2 + `"}}`,
		"fingerprint missing": `{"active":"k2","fingerprint":"k9","keys":{"k1":"` + h1 + `","k2":"` + h2 + `"}}`,
		"short hex":           `{"active":"k1","keys":{"k1":"` + h1[:62] + `"}}`,
		"long hex":            `{"active":"k1","keys":{"k1":"` + h1 + `00"}}`,
		"bad hex":             `{"active":"k1","keys":{"k1":"` + strings.Repeat("g", 64) + `"}}`,
		"short base64":        `{"active":"k1","keys":{"k1":"` + base64.StdEncoding.EncodeToString(key1[:31]) + `"}}`,
		"duplicate key":       `{"active":"k1","keys":{"k1":"` + h1 + `","k1":"` + h2 + `"}}`,
		"duplicate field":     `{"active":"k1","active":"k2","keys":{"k1":"` + h1 + `","k2":"` + h2 + `"}}`,
		"unknown field":       `{"active":"k1","keys":{"k1":"` + h1 + `"},"comment":"x"}`,
		"bad id":              `{"active":"k 1","keys":{"k 1":"` + h1 + `"}}`,
		"trailing":            `{"active":"k1","keys":{"k1":"` + h1 + `"}} {}`,
		"number key":          `{"active":"k1","keys":{"k1":12}}`,
		"too long":            `{"active":"k1","keys":{"k1":"` + h1 + `"}}` + strings.Repeat(" ", vault.MaxKeyringBytes),
	} {
		_, err := vault.ParseKeyring([]byte(text))
		if !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
			continue
		}
		for _, secret := range []string{h1, h2, h1[:16], h2[:16], "a1a1a1a1", "b2b2b2b2", "obKy", "oaGh"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error %q contains key material", name, err)
			}
		}
	}
}

func TestReadKeyring(t *testing.T) {
	text := `{"active":"k1","keys":{"k1":"` + hex.EncodeToString(key1) + `"}}`
	path := filepath.Join(t.TempDir(), "keyring.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := vault.ReadKeyring(path)
	if err != nil || k.Active() != "k1" {
		t.Fatalf("ReadKeyring = %v, %v", k, err)
	}
	if _, err := vault.ReadKeyring(filepath.Join(t.TempDir(), "none")); !errs.Is(errs.Invalid, err) {
		t.Fatalf("missing file: %v", err)
	}
	t.Setenv("VAULT_TEST_KEYRING", text)
	k, err = vault.KeyringFromEnv("VAULT_TEST_KEYRING")
	if err != nil || k.Active() != "k1" {
		t.Fatalf("KeyringFromEnv = %v, %v", k, err)
	}
	t.Setenv("VAULT_TEST_KEYRING", " ")
	if _, err := vault.KeyringFromEnv("VAULT_TEST_KEYRING"); !errs.Is(errs.Invalid, err) {
		t.Fatalf("empty variable: %v", err)
	}
	if _, err := vault.KeyringFromEnv("VAULT_TEST_KEYRING_UNSET"); !errs.Is(errs.Invalid, err) {
		t.Fatalf("unset variable: %v", err)
	}
}

func TestNewKeyring(t *testing.T) {
	k, err := vault.NewKeyring("k1", "", map[string][]byte{"k1": key1})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() (vault.Keyring, error){
		"none":      func() (vault.Keyring, error) { return vault.NewKeyring("k1", "", nil) },
		"short":     func() (vault.Keyring, error) { return vault.NewKeyring("k1", "", map[string][]byte{"k1": key1[:16]}) },
		"bad id":    func() (vault.Keyring, error) { return vault.NewKeyring("k/1", "", map[string][]byte{"k/1": key1}) },
		"no active": func() (vault.Keyring, error) { return vault.NewKeyring("", "", map[string][]byte{"k1": key1}) },
		"two, no fp": func() (vault.Keyring, error) {
			return vault.NewKeyring("k1", "", map[string][]byte{"k1": key1, "k2": key2})
		},
	} {
		if _, err := f(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if k.IsZero() || !(vault.Keyring{}).IsZero() {
		t.Fatal("IsZero")
	}
}

// A keyring prints as its ids.
func TestKeyringRedacted(t *testing.T) {
	k, err := vault.NewKeyring("k2", "k1", map[string][]byte{"k1": key1, "k2": key2})
	if err != nil {
		t.Fatal(err)
	}
	cfg := vault.Config{Keyring: k}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "keyring", k, "config", cfg)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "keyring", k)
	outs = append(outs, buf.String())
	b, _ := json.Marshal(map[string]any{"keyring": k})
	outs = append(outs, string(b))
	for _, out := range outs {
		for _, secret := range [][]byte{key1, key2} {
			if strings.Contains(out, hex.EncodeToString(secret)[:8]) || strings.Contains(out, base64.StdEncoding.EncodeToString(secret)[:8]) ||
				strings.Contains(out, string(secret[:4])) || strings.Contains(out, "161 161 161") || strings.Contains(out, "178 178") {
				t.Fatalf("output has key material: %s", out)
			}
		}
	}
	if got := k.String(); got != "keyring{active k2, fingerprint k1, keys k1 k2}" {
		t.Fatalf("String = %q", got)
	}
}

func TestConfig(t *testing.T) {
	k, _ := vault.NewKeyring("k1", "", map[string][]byte{"k1": key1})
	c := vault.Config{Keyring: k}
	c.Defaults()
	if c.CardsPerDEK != 10000 || c.DEKLifetime.Hours() != 24 || c.CVCLifetime.Minutes() != 15 || c.CachedDEKs != 1024 || c.Now == nil || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	for name, mod := range map[string]func(*vault.Config){
		"no keyring":   func(c *vault.Config) { c.Keyring = vault.Keyring{} },
		"cards":        func(c *vault.Config) { c.CardsPerDEK = 1<<20 + 1 },
		"negative":     func(c *vault.Config) { c.CardsPerDEK = -1 },
		"dek lifetime": func(c *vault.Config) { c.DEKLifetime = 1 },
		"cvc lifetime": func(c *vault.Config) { c.CVCLifetime = 25 * 60 * 60 * 1e9 },
		"short cvc":    func(c *vault.Config) { c.CVCLifetime = 1e9 },
		"cache":        func(c *vault.Config) { c.CachedDEKs = -1 },
	} {
		c := vault.Config{Keyring: k}
		mod(&c)
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
