package natskv

// UsageKey is the key of a voucher's redemptions, for tests.
var UsageKey = usageKey
