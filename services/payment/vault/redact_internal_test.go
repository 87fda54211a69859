package vault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// The sealed plaintext of a card prints as nothing either.
func TestSealedCardRedacted(t *testing.T) {
	c := sealedCard{Number: "4000002760003184", ExpMonth: 7, ExpYear: 2031}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "c", c)
	outs := []string{fmt.Sprintf("%v %+v %#v %s %d %x", c, c, c, c, c, c), fmt.Sprint(&c), buf.String()}
	for _, out := range outs {
		if strings.Contains(out, "3184") || strings.Contains(out, "2031") {
			t.Fatalf("output %q has the card", out)
		}
	}
	// Its JSON is the sealed form: it must hold the card (it is only
	// ever sealed).
	b, _ := json.Marshal(c)
	if !strings.Contains(string(b), c.Number) {
		t.Fatalf("sealed form %s lacks the number", b)
	}
}
