package pgrelay

// SetAfterPublish makes f run after each batch's acks and before its
// delete; an error from f abandons the batch there, as a relay that died
// between publishing and committing.
func (r *Relay) SetAfterPublish(f func() error) { r.afterPublish = f }
