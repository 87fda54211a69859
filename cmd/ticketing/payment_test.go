package main

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/vault"
	vaultkv "github.com/ticketing/ticketing/services/payment/vault/natskv"
)

// A key rotation as an operator runs it: cards sealed under k1, a keyring
// of k1 and k2 with k2 active, `ticketing payment rewrap`: the data keys
// move under k2, the cards still open, and k1 must stay (the fingerprint
// key is derived from it) while no data key needs it.
func TestPaymentRewrapCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sec, _, err := cli.DevSecurity(log, testSecrets.Dir, nil, "aes")
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.Start(ctx, core.Config{
		Node:       sec.SecureNode(node.Config{Name: "core-1", DataDir: filepath.Join(t.TempDir(), "core"), ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0"}),
		AdminToken: testAdminToken,
	}, supervisortest.New(t), log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := hex.EncodeToString(make([]byte, 32)), strings.Repeat("ab", 32)
	store, err := vaultkv.Open(ctx, c.JS, vaultkv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	old, err := vault.ParseKeyring([]byte(`{"active":"k1","keys":{"k1":"` + k1 + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := vault.New(ctx, store, vault.Config{Keyring: old})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := v1.Seal(ctx, payment.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"})
	if err != nil {
		t.Fatal(err)
	}
	both := filepath.Join(t.TempDir(), "keyring.json")
	if err := os.WriteFile(both, []byte(`{"active":"k2","fingerprint":"k1","keys":{"k1":"`+k1+`","k2":"`+k2+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binPath, "payment", "rewrap", "--nats", c.Node.ClientURL(), "--secrets", testSecrets.Dir,
		"--keyring-file", both).CombinedOutput()
	if err != nil {
		t.Fatalf("ticketing payment rewrap: %v\n%s", err, out)
	}
	for _, want := range []string{"1 re-wrapped", "key k1: wraps 0 data keys, active false, fingerprint true: must stay",
		"key k2: wraps 1 data keys, active true, fingerprint false: must stay"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	rotated, _ := vault.ReadKeyring(both)
	v2, err := vault.New(ctx, store, vault.Config{Keyring: rotated})
	if err != nil {
		t.Fatal(err)
	}
	card, err := v2.Open(ctx, tok.ID)
	if err != nil || card.Number != "4242424242424242" {
		t.Fatalf("the card after the rotation: %v", err)
	}
	uses, err := v2.KEKs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uses {
		if u.ID == "k1" && u.DEKs != 0 {
			t.Fatalf("k1 still wraps %d data keys", u.DEKs)
		}
	}
}
