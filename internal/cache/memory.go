package cache

import (
	"bytes"
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is a bounded, in-process LRU cache with a TTL per entry. It is the
// fallback when no Redis URL is configured: each replica then has its own
// cache, so invalidations on one replica do not reach the others and only
// the TTL bounds how stale a read can be.
//
// Memory is safe for concurrent use. Values are copied on Set and on Get, so
// neither the writer nor a reader can change what another caller sees.
type Memory struct {
	mu      sync.Mutex
	max     int
	order   *list.List               // front = most recently used
	entries map[string]*list.Element // values are *memoryEntry
}

type memoryEntry struct {
	key     string
	value   []byte
	expires time.Time // zero means no expiry
}

// NewMemory returns an empty cache holding at most maxEntries entries; when
// full, Set evicts the least recently used entry. It panics if maxEntries < 1,
// which is a programming or configuration error better caught at startup.
func NewMemory(maxEntries int) *Memory {
	if maxEntries < 1 {
		panic("cache: NewMemory needs maxEntries >= 1")
	}
	return &Memory{
		max:     maxEntries,
		order:   list.New(),
		entries: make(map[string]*list.Element),
	}
}

// Get returns a copy of the value stored under key. An expired entry is a
// miss and is removed here: expiry is lazy, there is no sweeper goroutine.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.entries[key]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*memoryEntry)
	if !e.expires.IsZero() && !time.Now().Before(e.expires) {
		m.remove(el)
		return nil, false, nil
	}
	m.order.MoveToFront(el)
	return bytes.Clone(e.value), true, nil
}

// Set stores a copy of value under key for ttl; ttl <= 0 means no expiry.
// Overwriting an entry counts as a use for the LRU order.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	e := &memoryEntry{key: key, value: bytes.Clone(value)}
	if ttl > 0 {
		e.expires = time.Now().Add(ttl)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.entries[key]; ok {
		el.Value = e
		m.order.MoveToFront(el)
		return nil
	}
	m.entries[key] = m.order.PushFront(e)
	for m.order.Len() > m.max {
		m.remove(m.order.Back())
	}
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.entries[key]; ok {
		m.remove(el)
	}
	return nil
}

// Len reports the number of entries held, including expired ones not yet
// evicted.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

// Ping always succeeds: there is no backend to reach.
func (m *Memory) Ping(context.Context) error { return nil }

// Kind returns "memory".
func (m *Memory) Kind() string { return "memory" }

// Close drops every entry so the memory can be reclaimed. The cache stays
// usable afterwards, which keeps shutdown ordering free of races.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.order.Init()
	clear(m.entries)
	return nil
}

// remove unlinks el; m.mu must be held.
func (m *Memory) remove(el *list.Element) {
	m.order.Remove(el)
	delete(m.entries, el.Value.(*memoryEntry).key)
}

var _ Cache = (*Memory)(nil)
