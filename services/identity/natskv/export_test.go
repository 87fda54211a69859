package natskv

// EmailKey is the key of an address's claim, for tests.
var EmailKey = emailKey
