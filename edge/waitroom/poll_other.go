//go:build !linux

package waitroom

func newReader(m *Manager, _ int) (reader, error) { return newGoroutineReader(m), nil }
