package recovery_test

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/recovery"
)

var shown = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$`)

func TestGenerateAndMatch(t *testing.T) {
	codes, hashes, err := recovery.Generate(recovery.Count)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 || len(hashes) != 10 {
		t.Fatalf("Generate(10) = %d codes, %d hashes", len(codes), len(hashes))
	}
	if len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 || len(slices.Compact(slices.Sorted(slices.Values(hashes)))) != 10 {
		t.Fatalf("repeated codes or hashes: %v %v", codes, hashes)
	}
	for i, c := range codes {
		if !shown.MatchString(c) {
			t.Fatalf("code %q is not xxxxx-xxxxx-xxxxx of the alphabet", c)
		}
		plain := strings.ReplaceAll(c, "-", "")
		if strings.Contains(hashes[i], plain) || strings.Contains(hashes[i], c) || !strings.HasPrefix(hashes[i], "sha256$") {
			t.Fatalf("hash %q of %q", hashes[i], c)
		}
		for _, in := range []string{c, plain, strings.ToUpper(c), " " + c[:5] + " " + c[6:11] + "\t" + c[12:] + " ", c[:3] + "-" + c[3:]} {
			if j, ok := recovery.Match(in, hashes); !ok || j != i {
				t.Errorf("Match(%q) = %d, %v; want %d", in, j, ok, i)
			}
		}
	}
	// A code of another set, and a code one character off.
	other, _, err := recovery.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	flip := map[byte]byte{'0': '2', '1': '2'}
	c := []byte(codes[0])
	if r, ok := flip[c[0]]; ok {
		c[0] = r
	} else {
		c[0] = '0'
	}
	for _, in := range []string{other[0], string(c)} {
		if j, ok := recovery.Match(in, hashes); ok || j != -1 {
			t.Errorf("Match(%q) = %d, %v; want -1, false", in, j, ok)
		}
	}
	// Consuming is the caller's: without the matched hash the code is spent.
	j, ok := recovery.Match(codes[3], hashes)
	if !ok {
		t.Fatal("no match")
	}
	rest := slices.Delete(slices.Clone(hashes), j, j+1)
	if j, ok := recovery.Match(codes[3], rest); ok {
		t.Fatalf("Match(spent code) = %d, true", j)
	}
	if j, ok := recovery.Match(codes[4], rest); !ok || j != 3 {
		t.Fatalf("Match(next code) = %d, %v; want 3 in the shortened list", j, ok)
	}
}

// TestStoredFormat pins the stored form: a hash computed here, not by the
// package, matches, so hashes stored today keep matching.
func TestStoredFormat(t *testing.T) {
	salt := []byte("0123456789abcdef")
	d := sha256.Sum256(append(slices.Clone(salt), "7kq2mx9fd0hc4tw"...))
	h := "sha256$" + base64.RawURLEncoding.EncodeToString(salt) + "$" + base64.RawURLEncoding.EncodeToString(d[:])
	if h != "sha256$MDEyMzQ1Njc4OWFiY2RlZg$"+base64.RawURLEncoding.EncodeToString(d[:]) {
		t.Fatal(h)
	}
	for _, in := range []string{"7kq2m-x9fd0-hc4tw", "7KQ2M-X9FD0-HC4TW", "7kq2m-x9fdo-hc4tw", "7KQ2MX9FDOHC4TW"} {
		if j, ok := recovery.Match(in, []string{h}); !ok || j != 0 {
			t.Errorf("Match(%q) = %d, %v", in, j, ok)
		}
	}
	// Hash makes the same form with its own salt.
	h2, err := recovery.Hash("7kq2m-x9fd0-hc4tw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h2, "$")
	if len(parts) != 3 || parts[0] != "sha256" || len(parts[1]) != 22 || len(parts[2]) != 43 || h2 == h {
		t.Fatalf("Hash = %q", h2)
	}
	if j, ok := recovery.Match("7kq2mx9fd0hc4tw", []string{h2, h}); !ok || j != 0 {
		t.Fatalf("Match = %d, %v; want 0 (the first of two matching hashes)", j, ok)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"7kq2m-x9fd0-hc4tw":       "7kq2mx9fd0hc4tw",
		"7KQ2M X9FD0 HC4TW":       "7kq2mx9fd0hc4tw",
		"  7kq2mx9fd0hc4tw\t":     "7kq2mx9fd0hc4tw",
		"oOiIl-00111-abcde":       "0011100111abcde",
		"7-k-q-2-m-x-9-f-d-0-h-c": "",
	} {
		got, ok := recovery.Normalize(in)
		if want == "" {
			if ok {
				t.Errorf("Normalize(%q) = %q, true; want false", in, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"", "7kq2m-x9fd0-hc4t", "7kq2m-x9fd0-hc4twz", "7kq2m-x9fd0-hc4tu", // u is not in the alphabet
		"7kq2m_x9fd0_hc4tw", "7kq2m-x9fd0-hc4t\u00fc", "7kq2m-x9fd0-hc4t\x00", "７kq2m-x9fd0-hc4tw",
		strings.Repeat(" ", 60) + "7kq2mx9fd0hc4tw", // over MaxInputLen
	} {
		if got, ok := recovery.Normalize(in); ok {
			t.Errorf("Normalize(%q) = %q, true; want false", in, got)
		}
		if j, ok := recovery.Match(in, nil); ok || j != -1 {
			t.Errorf("Match(%q) = %d, %v", in, j, ok)
		}
		if h, err := recovery.Hash(in); !errs.Is(errs.Invalid, err) || h != "" {
			t.Errorf("Hash(%q) = %q, %v; want invalid", in, h, err)
		}
	}
}

func TestMatchSkipsMalformedHashes(t *testing.T) {
	const code = "abcde-fghjk-mnpqr"
	// A hash with a '-' or '_' in it, so that its standard-base64 spelling
	// below differs from it (one in eight has neither).
	var good string
	for !strings.ContainsAny(good, "-_") {
		var err error
		if good, err = recovery.Hash(code); err != nil {
			t.Fatal(err)
		}
	}
	salt, dig, _ := strings.Cut(strings.TrimPrefix(good, "sha256$"), "$")
	bad := []string{
		"", "sha256$", "sha256$$", "sha1$" + salt + "$" + dig, "SHA256$" + salt + "$" + dig,
		"sha256$" + salt + "$" + dig + "$", "sha256$" + salt + "=$" + dig, "sha256$" + salt + "$" + dig[:42],
		"sha256$" + salt[:21] + "$" + dig, "sha256$" + salt + "$" + dig + "AAAA",
		"sha256$" + salt[:11] + "\n" + salt[11:] + "$" + dig,
		"sha256$" + strings.NewReplacer("-", "+", "_", "/").Replace(salt) + "$" + strings.NewReplacer("-", "+", "_", "/").Replace(dig),
		"sha256$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // well-formed, zero digest
	}
	if j, ok := recovery.Match(code, bad); ok || j != -1 {
		t.Fatalf("Match(malformed hashes) = %d, %v", j, ok)
	}
	for i := range len(bad) + 1 {
		list := slices.Insert(slices.Clone(bad), i, good)
		if j, ok := recovery.Match(code, list); !ok || j != i {
			t.Errorf("Match with the good hash at %d of %d = %d, %v", i, len(list), j, ok)
		}
	}
}

func TestGenerateCount(t *testing.T) {
	for _, n := range []int{0, -1, recovery.MaxCount + 1} {
		if c, h, err := recovery.Generate(n); !errs.Is(errs.Invalid, err) || c != nil || h != nil {
			t.Errorf("Generate(%d) = %v, %v, %v; want invalid", n, c, h, err)
		}
	}
	c, h, err := recovery.Generate(recovery.MaxCount)
	if err != nil || len(c) != recovery.MaxCount || len(h) != recovery.MaxCount {
		t.Fatalf("Generate(MaxCount) = %d, %d, %v", len(c), len(h), err)
	}
}

// TestEntropy checks that the codes use the whole alphabet evenly: over
// 2,000 codes (30,000 characters) each symbol is expected 937.5 times,
// with a standard deviation of about 30, and the bound is six of those; a
// bias toward part of the alphabet or a position stuck on few symbols
// fails it.
func TestEntropy(t *testing.T) {
	const sets = 20
	count := map[rune]int{}
	var pos [recovery.Length]map[rune]int
	for i := range pos {
		pos[i] = map[rune]int{}
	}
	n := 0
	for range sets {
		codes, _, err := recovery.Generate(recovery.MaxCount)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range codes {
			for i, r := range strings.ReplaceAll(c, "-", "") {
				count[r]++
				pos[i][r]++
				n++
			}
		}
	}
	want := float64(n) / 32
	if len(count) != 32 {
		t.Fatalf("%d symbols used, want 32: %v", len(count), count)
	}
	for r, k := range count {
		if float64(k) < want*0.8 || float64(k) > want*1.2 {
			t.Errorf("symbol %q: %d times, want about %.0f", r, k, want)
		}
	}
	for i, m := range pos {
		if len(m) < 30 { // 2,000 draws of 32 symbols: all 32 almost surely, 30 for sure
			t.Errorf("position %d: only %d symbols", i, len(m))
		}
	}
}
