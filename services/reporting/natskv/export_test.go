package natskv

// SetBeforePartition sets a hook that runs before the write of the i-th
// partition of a batch.
func (s *Store) SetBeforePartition(f func(i int) error) { s.beforePartition = f }
