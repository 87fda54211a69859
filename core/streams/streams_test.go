package streams_test

import (
	"testing"

	"github.com/ticketing/ticketing/core/streams"
)

// The admission keys are stored data: the bucket, the key and the bucket's
// description stay what they were when the store lived in
// services/admission/natskv.
func TestAdmissionKeysStoredNames(t *testing.T) {
	c := streams.AdmissionKeysConfig(3)
	kv := c.KeyValueConfig()
	if c.Bucket != "admission-keys" || c.Key != "keyset" || kv.Bucket != "admission-keys" || kv.Replicas != 3 ||
		kv.Description != "admission token signing keys (private: core only)" || kv.History != 1 || kv.MaxValueSize != 64<<10 {
		t.Fatalf("admission key store %+v, bucket %+v", c, kv)
	}
}
