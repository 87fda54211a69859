package node

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrStoreKey is returned by Start when the store key does not fit the
// store: another key than the one it was encrypted with, or none for an
// encrypted store.
var ErrStoreKey = errors.New("node: the JetStream store key does not fit the store")

// storeKeyCheckFile is kept in the data directory, beside nats-server's
// jetstream folder: "v1 <salt> <HMAC-SHA256(key, salt)>", hex.
const storeKeyCheckFile = "jetstream.keycheck"

func keyCheck(key string, salt []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte("ticketing jetstream store key check\x00"))
	m.Write(salt)
	return hex.EncodeToString(m.Sum(nil))
}

// checkStoreKey compares key with the check value in dataDir, if any.
func checkStoreKey(dataDir, key string) error {
	b, err := os.ReadFile(filepath.Join(dataDir, storeKeyCheckFile))
	if errors.Is(err, os.ErrNotExist) {
		// A new store, or one that was never encrypted (nats-server
		// encrypts it on this start when a key is given).
		return nil
	}
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if key == "" {
		return fmt.Errorf("%w: the store in %s is encrypted; give its key", ErrStoreKey, dataDir)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[0] != "v1" {
		return fmt.Errorf("node: %s: not a key check file", filepath.Join(dataDir, storeKeyCheckFile))
	}
	salt, err := hex.DecodeString(f[1])
	if err != nil {
		return fmt.Errorf("node: %s: %w", filepath.Join(dataDir, storeKeyCheckFile), err)
	}
	if !hmac.Equal([]byte(keyCheck(key, salt)), []byte(f[2])) {
		return fmt.Errorf("%w: the store in %s was encrypted with another key", ErrStoreKey, dataDir)
	}
	return nil
}

// writeStoreKeyCheck keeps a check value of key in dataDir once a store
// is encrypted with it (nothing without a key, or when one is there).
func writeStoreKeyCheck(dataDir, key string) error {
	path := filepath.Join(dataDir, storeKeyCheckFile)
	if key == "" {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	line := fmt.Sprintf("v1 %x %s\n", salt, keyCheck(key, salt))
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}
