package postgres

// SetBeforeCommit sets a hook that runs in Apply's transaction after every
// write, before the commit.
func (s *Store) SetBeforeCommit(f func() error) { s.beforeCommit = f }
