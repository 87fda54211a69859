-- Quotes are purged a day after they expire (PurgeQuotes): by expiry.
CREATE INDEX pricing_quotes_expires_at ON pricing_quotes (expires_at);
