package joinguard

// SpentLen is how many challenges g remembers as spent.
func SpentLen(g *Guard) int { return g.spent.len() }
