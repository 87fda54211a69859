//go:build !linux

package queue

func newReader(m *Manager, _ int) (reader, error) { return newGoroutineReader(m), nil }
