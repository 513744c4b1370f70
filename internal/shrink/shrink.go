// Package shrink lets go of the memory a map grew to once it is empty.
package shrink

// Map returns m, or a new empty map in its place when m is empty: a Go
// map keeps the buckets of its largest size after its entries are
// deleted, so a map sized by a burst of calls would hold that memory for
// ever. An empty map costs one small allocation to make again.
func Map[K comparable, V any](m map[K]V) map[K]V {
	if len(m) == 0 {
		return map[K]V{}
	}
	return m
}
