package password_test

import (
	"encoding/base64"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/password"
)

func newHasher(t testing.TB, p password.Params) *password.Hasher {
	t.Helper()
	h, err := password.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Known answers made with the reference implementation, libargon2
// (argon2id_hash_encoded of Debian's libargon2-1 0~20171227), so that the
// hashes of this package and those of other argon2id implementations verify
// each other.
var referenceHashes = []struct {
	pw, encoded string
	rehash      bool // under DefaultParams
}{
	{"correct horse battery staple", "$argon2id$v=19$m=19456,t=2,p=1$dGlja2V0aW5nLXNhbHQxNg$n7z5PnQsEHiKHudCFMjM5+w0J1FHUvVnsPGotOMSuXI", false},
	// Below the minimum: m=8192, t=1.
	{"hunter2hunter2", "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$weJ/f5KKsSvvCEmM83RDWjG905dp3xSrsb48l54gqH8", true},
	// Above it, two lanes; the password's UTF-8 is NFC.
	{"p\u00e4ssw\u00f6rd-\u00fcn\u00efcode", "$argon2id$v=19$m=32768,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$tccfpJX8XAk80IOb4UdDUbci1JpjMAJHsV/ZztCx7SM", false},
}

func TestVerifyReferenceHashes(t *testing.T) {
	h := newHasher(t, password.DefaultParams())
	for _, c := range referenceHashes {
		ok, rehash, err := h.Verify(c.pw, c.encoded)
		if err != nil || !ok || rehash != c.rehash {
			t.Errorf("Verify(%q, %s) = %v, %v, %v; want true, %v, nil", c.pw, c.encoded, ok, rehash, err, c.rehash)
		}
		// One character off, and the password with a byte more.
		wrong := []string{c.pw[:len(c.pw)-1] + "X", c.pw + "e", strings.ToUpper(c.pw[:1]) + c.pw[1:]}
		for _, w := range wrong {
			ok, rehash, err := h.Verify(w, c.encoded)
			if err != nil || ok || rehash != c.rehash {
				t.Errorf("Verify(%q, %s) = %v, %v, %v; want false, %v, nil", w, c.encoded, ok, rehash, err, c.rehash)
			}
		}
		d, err := password.Parse(c.encoded)
		if err != nil || d.String() != c.encoded {
			t.Errorf("Parse(%s) = %+v, %v; String gives %s", c.encoded, d, err, d.String())
		}
	}
}

func TestNormalization(t *testing.T) {
	h := newHasher(t, password.DefaultParams())
	// The reference hash of the NFC password verifies for the same password
	// decomposed (NFD: a + combining diaeresis), as typed on some systems.
	nfd := "pa\u0308ssw" + "o\u0308rd-" + "u\u0308n" + "i\u0308code"
	ok, _, err := h.Verify(nfd, referenceHashes[2].encoded)
	if err != nil || !ok {
		t.Fatalf("Verify(NFD form) = %v, %v; want true", ok, err)
	}
	// NFKC folds compatibility characters: the "ﬁ" ligature is "fi".
	enc, err := h.Hash("\ufb01nd-the-door")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := h.Verify("find-the-door", enc); err != nil || !ok {
		t.Fatalf("Verify(fi for the ligature) = %v, %v; want true", ok, err)
	}
}

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)

func TestHashVerify(t *testing.T) {
	h := newHasher(t, password.DefaultParams())
	const pw = "a long enough password"
	e1, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{e1, e2} {
		m := phcPattern.FindStringSubmatch(e)
		if m == nil {
			t.Fatalf("Hash = %s, not of the form %s", e, phcPattern)
		}
		salt, _ := base64.RawStdEncoding.DecodeString(m[1])
		key, _ := base64.RawStdEncoding.DecodeString(m[2])
		// The key is argon2id of the password and salt with the encoded
		// parameters, independently of this package's decoder.
		if want := argon2.IDKey([]byte(pw), salt, 2, 19456, 1, 32); string(key) != string(want) || len(salt) != 16 {
			t.Fatalf("Hash = %s: not argon2id(pw, salt, t=2, m=19456, p=1, 32)", e)
		}
		ok, rehash, err := h.Verify(pw, e)
		if err != nil || !ok || rehash {
			t.Fatalf("Verify(pw, %s) = %v, %v, %v; want true, false, nil", e, ok, rehash, err)
		}
		ok, _, err = h.Verify(pw+" ", e)
		if err != nil || ok {
			t.Fatalf("Verify(pw+space, %s) = %v, %v; want false", e, ok, err)
		}
	}
	if e1 == e2 {
		t.Fatalf("two hashes of the same password are equal (%s): the salt is not random", e1)
	}
}

func TestParamsValidate(t *testing.T) {
	d := password.DefaultParams()
	if d != (password.Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}) {
		t.Fatalf("DefaultParams = %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	ok := []func(*password.Params){
		func(p *password.Params) { p.Memory = 64 * 1024; p.Time = 3; p.Threads = 4 },
		func(p *password.Params) {
			p.Memory = password.MaxMemory
			p.Time = password.MaxTime
			p.Threads = password.MaxThreads
		},
		func(p *password.Params) { p.SaltLen = 64; p.KeyLen = 64 },
	}
	for i, f := range ok {
		p := d
		f(&p)
		if err := p.Validate(); err != nil {
			t.Errorf("ok %d: %+v: %v", i, p, err)
		}
	}
	bad := []func(*password.Params){
		func(p *password.Params) { p.Memory = 19455 },
		func(p *password.Params) { p.Memory = 0 },
		func(p *password.Params) { p.Memory = password.MaxMemory + 1 },
		func(p *password.Params) { p.Time = 1 },
		func(p *password.Params) { p.Time = password.MaxTime + 1 },
		func(p *password.Params) { p.Threads = 0 },
		func(p *password.Params) { p.Threads = password.MaxThreads + 1 },
		func(p *password.Params) { p.SaltLen = 15 },
		func(p *password.Params) { p.SaltLen = 65 },
		func(p *password.Params) { p.KeyLen = 31 },
		func(p *password.Params) { p.KeyLen = 65 },
		func(p *password.Params) { *p = password.Params{} },
	}
	for i, f := range bad {
		p := d
		f(&p)
		if err := p.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("bad %d: %+v: %v, want invalid", i, p, err)
		}
		if h, err := password.New(p); h != nil || !errs.Is(errs.Invalid, err) {
			t.Errorf("bad %d: New(%+v) = %v, %v, want invalid", i, p, h, err)
		}
	}
}

func TestLengthLimits(t *testing.T) {
	h := newHasher(t, password.DefaultParams())
	refuse := map[string]string{
		"":        password.ReasonTooShort,
		"1234567": password.ReasonTooShort,
		"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9":         password.ReasonTooShort, // 7 characters in 14 bytes
		"e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301":  password.ReasonTooShort, // the same, decomposed: 14 code points, 7 after NFKC
		strings.Repeat("a", password.MaxLength+1):            password.ReasonTooLong,
		strings.Repeat("\u00e9", password.MaxLength/2) + "a": password.ReasonTooLong, // 513 characters, 1025 bytes
		"12345678\xff": password.ReasonNotUTF8,
	}
	for pw, reason := range refuse {
		enc, err := h.Hash(pw)
		if enc != "" || !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != reason {
			t.Errorf("Hash(%.20q… %d bytes) = %q, %v; want invalid, %s", pw, len(pw), enc, err, reason)
		}
	}
	for _, pw := range []string{"12345678", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9", strings.Repeat("a", password.MaxLength), "        "} {
		enc, err := h.Hash(pw)
		if err != nil {
			t.Errorf("Hash(%.20q… %d bytes): %v", pw, len(pw), err)
			continue
		}
		if ok, _, err := h.Verify(pw, enc); !ok || err != nil {
			t.Errorf("Verify(%.20q… %d bytes) = %v, %v", pw, len(pw), ok, err)
		}
	}
	// Verify and VerifyDummy refuse an overlong password the same way,
	// before any hashing; a short one is only a wrong password.
	long := strings.Repeat("a", password.MaxLength+1)
	if ok, _, err := h.Verify(long, referenceHashes[0].encoded); ok || !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != password.ReasonTooLong {
		t.Errorf("Verify(overlong) = %v, %v; want invalid, too long", ok, err)
	}
	if err := h.VerifyDummy(long); !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != password.ReasonTooLong {
		t.Errorf("VerifyDummy(overlong) = %v; want invalid, too long", err)
	}
	if ok, _, err := h.Verify("short", referenceHashes[0].encoded); ok || err != nil {
		t.Errorf("Verify(short) = %v, %v; want false, nil", ok, err)
	}
}

// stored makes a PHC string with the given parameters the way an older
// configuration would have, without this package's Hash.
func stored(pw string, m, t uint32, p uint8, saltLen, keyLen int) string {
	salt := []byte(strings.Repeat("s", saltLen))
	d := password.Decoded{
		Params: password.Params{Memory: m, Time: t, Threads: p},
		Salt:   salt,
		Key:    argon2.IDKey([]byte(pw), salt, t, m, p, uint32(keyLen)),
	}
	return d.String()
}

func TestNeedsRehash(t *testing.T) {
	const pw = "upgrade me please"
	strong := password.Params{Memory: 32768, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}
	h := newHasher(t, strong)
	for _, c := range []struct {
		name   string
		enc    string
		rehash bool
	}{
		{"same", stored(pw, 32768, 3, 2, 16, 32), false},
		{"stronger", stored(pw, 40960, 4, 3, 32, 64), false},
		{"less memory", stored(pw, 32767, 3, 2, 16, 32), true},
		{"fewer passes", stored(pw, 32768, 2, 2, 16, 32), true},
		{"fewer lanes", stored(pw, 32768, 3, 1, 16, 32), true},
		{"shorter salt", stored(pw, 32768, 3, 2, 8, 32), true},
		{"shorter key", stored(pw, 32768, 3, 2, 16, 16), true},
		{"more memory, fewer passes", stored(pw, 65536, 2, 2, 16, 32), true},
	} {
		ok, rehash, err := h.Verify(pw, c.enc)
		if err != nil || !ok || rehash != c.rehash {
			t.Errorf("%s: Verify = %v, %v, %v; want true, %v, nil", c.name, ok, rehash, err, c.rehash)
		}
		// A wrong password reports the same needsRehash: it says what the
		// stored hash is, not whether the password matched.
		ok, rehash, err = h.Verify(pw+"!", c.enc)
		if err != nil || ok || rehash != c.rehash {
			t.Errorf("%s: Verify(wrong) = %v, %v, %v; want false, %v, nil", c.name, ok, rehash, err, c.rehash)
		}
	}
	// The rehash is made with the configured parameters and needs no other.
	enc, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=32768,t=3,p=2$") {
		t.Fatalf("Hash = %s", enc)
	}
	if ok, rehash, err := h.Verify(pw, enc); !ok || rehash || err != nil {
		t.Fatalf("Verify(rehash) = %v, %v, %v", ok, rehash, err)
	}
}

func TestVerifyRefusesUnusableStoredHashes(t *testing.T) {
	h := newHasher(t, password.DefaultParams())
	salt := "c2FsdHNhbHRzYWx0c2FsdA"
	key := "weJ/f5KKsSvvCEmM83RDWjG905dp3xSrsb48l54gqH8"
	for enc, reason := range map[string]string{
		// Costs that would take a sign-in down: refused, not computed (the
		// first asks for 4 GiB, the second for 2^32-1 passes).
		"$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key:        password.ReasonTooCostly,
		"$argon2id$v=19$m=19456,t=4294967295,p=1$" + salt + "$" + key: password.ReasonTooCostly,
		"$argon2id$v=19$m=19456,t=2,p=255$" + salt + "$" + key:        password.ReasonTooCostly,
		"$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + key:    password.ReasonMalformed,
		"": password.ReasonMalformed,
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key:            password.ReasonMalformed,
		"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW": password.ReasonMalformed,
	} {
		ok, rehash, err := h.Verify("hunter2hunter2", enc)
		if ok || rehash || err == nil || errs.KindOf(err) != errs.Other || errs.ReasonOf(err) != reason {
			t.Errorf("Verify(%s) = %v, %v, %v (%v, %q); want an internal error, %s", enc, ok, rehash, err, errs.KindOf(err), errs.ReasonOf(err), reason)
		}
	}
}

func TestParse(t *testing.T) {
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "weJ/f5KKsSvvCEmM83RDWjG905dp3xSrsb48l54gqH8"
	good := "$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key
	d, err := password.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	want := password.Params{Memory: 8192, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	if d.Params != want || string(d.Salt) != "saltsaltsaltsalt" || len(d.Key) != 32 || d.String() != good {
		t.Fatalf("Parse(%s) = %+v", good, d)
	}
	// The limits themselves are accepted.
	for _, s := range []string{
		"$argon2id$v=19$m=262144,t=16,p=16$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=128,t=1,p=16$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + "AAAAAAAAAAA" + "$" + "AAAAAAAAAAAAAAAAAAAAAA",          // 8-byte salt, 16-byte key
		"$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("A", 86) + "$" + strings.Repeat("A", 86), // 64 and 64
	} {
		if d, err := password.Parse(s); err != nil || d.String() != s {
			t.Errorf("Parse(%s) = %v, %v", s, d, err)
		}
	}
	costly := []string{
		"$argon2id$v=19$m=262145,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=17,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=17$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=4294967295,p=255$" + salt + "$" + key,
	}
	for _, s := range costly {
		if _, err := password.Parse(s); !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != password.ReasonTooCostly {
			t.Errorf("Parse(%s) = %v, want invalid, too costly", s, err)
		}
	}
	malformed := []string{
		"", "$", "$$$$$", "argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key + "$",
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt,
		"$argon2d$v=19$m=8192,t=1,p=1$" + salt + "$" + key,
		"$argon2i$v=19$m=8192,t=1,p=1$" + salt + "$" + key,
		"$ARGON2ID$v=19$m=8192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=8192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$m=8192,t=1,p=1$" + salt + "$" + key, // v= missing (the pre-1.3 form)
		"$argon2id$v=019$m=8192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=8192,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=1,keyid=abc$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=1,data=abc$" + salt + "$" + key,
		"$argon2id$v=19$m=08192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=+8192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8_192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=0x2000,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m= 8192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=127,t=1,p=16$" + salt + "$" + key, // less than 8 KiB a lane
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key + "=",
		"$argon2id$v=19$m=8192,t=1,p=1$" + "c2FsdHNhbHRzYWx0c2FsdB" + "$" + key, // non-zero trailing bits
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt[:11] + "\n" + salt[11:] + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt[:11] + "\r" + salt[11:] + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=1$" + strings.NewReplacer("/", "_", "+", "-").Replace(salt) + "$" + strings.NewReplacer("/", "_", "+", "-").Replace(key), // base64url
		"$argon2id$v=19$m=8192,t=1,p=1$" + "AAAAAAAAAA" + "$" + key,             // 7-byte salt
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + "AAAAAAAAAAAAAAAAAAAA",  // 15-byte key
		"$argon2id$v=19$m=8192,t=1,p=1$" + strings.Repeat("A", 88) + "$" + key,  // 66-byte salt
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + strings.Repeat("A", 88), // 66-byte key
		"$argon2id$v=19$m=8192,t=1,p=1$$" + key,
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key + strings.Repeat("A", 300),
		" $argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key + " ",
	}
	for _, s := range malformed {
		if d, err := password.Parse(s); !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != password.ReasonMalformed {
			t.Errorf("Parse(%q) = %+v, %v; want invalid, malformed", s, d, err)
		}
	}
}

// memAlloc returns the bytes f allocates on the heap.
func memAlloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestVerifyDummyCostsAVerify checks that VerifyDummy does the argon2id
// work of the configured parameters: it allocates their memory as a real
// Verify does (a count, not a timing, so that the test is not flaky), and
// no password matches it.
func TestVerifyDummyCostsAVerify(t *testing.T) {
	p := password.Params{Memory: 32768, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := newHasher(t, p)
	enc, err := h.Hash("the real password")
	if err != nil {
		t.Fatal(err)
	}
	verify := memAlloc(func() {
		if ok, _, err := h.Verify("a wrong password", enc); ok || err != nil {
			t.Errorf("Verify = %v, %v", ok, err)
		}
	})
	dummy := memAlloc(func() {
		if err := h.VerifyDummy("a wrong password"); err != nil {
			t.Error(err)
		}
	})
	need := uint64(p.Memory) * 1024
	if verify < need || dummy < need {
		t.Fatalf("Verify allocated %d bytes, VerifyDummy %d; want at least m=%d KiB (%d) each", verify, dummy, p.Memory, need)
	}
	if dummy < verify*9/10 || dummy > verify*11/10 {
		t.Fatalf("VerifyDummy allocated %d bytes, Verify %d: not the same work", dummy, verify)
	}
}

func TestConcurrentUse(t *testing.T) {
	h := newHasher(t, password.DefaultParams())
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := strings.Repeat(string(rune('a'+i)), 10)
			enc, err := h.Hash(pw)
			if err != nil {
				t.Error(err)
				return
			}
			if ok, _, err := h.Verify(pw, enc); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
			if err := h.VerifyDummy(pw); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkHash measures Hash at the default (OWASP minimum) parameters on
// one goroutine; hashes/s is its rate, the raw argon2id rate of one core.
func BenchmarkHash(b *testing.B) {
	h := newHasher(b, password.DefaultParams())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkHashParallel is BenchmarkHash on GOMAXPROCS goroutines: the
// rate the machine sustains (argon2id with p=1 uses one core a hash).
func BenchmarkHashParallel(b *testing.B) {
	h := newHasher(b, password.DefaultParams())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash("correct horse battery staple"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}
