// Package ordered encodes a sequence on several goroutines and hands the
// encodings over in their order, never holding more than a few of them.
package ordered

import (
	"sync"
	"sync/atomic"
)

// Encode calls consume with the encodings of indices 0, ..., n-1, in that
// order, encoding with up to workers goroutines at once, each with the
// encode function newWorker returns (so that a worker may keep buffers
// of its own): at most a few encodings per worker are ahead of the one
// consumed, so that the encoded whole is never held. With fewer than two
// workers or items, it encodes and consumes one by one on the caller's
// goroutine.
func Encode(n, workers int, newWorker func() func(i int) []byte, consume func([]byte)) {
	if workers < 2 || n < 2 {
		encode := newWorker()
		for i := 0; i < n; i++ {
			consume(encode(i))
		}
		return
	}
	// A worker takes a token before it takes an index, and the consumer
	// returns it: the indices taken and not consumed are fewer than
	// ahead's capacity, and the smallest of them is being encoded.
	ahead := make(chan struct{}, 4*workers)
	slots := make([]chan []byte, n)
	for i := range slots {
		slots[i] = make(chan []byte, 1)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			encode := newWorker()
			for {
				ahead <- struct{}{}
				i := int(next.Add(1) - 1)
				if i >= n {
					<-ahead
					return
				}
				slots[i] <- encode(i)
			}
		}()
	}
	for i := range slots {
		b := <-slots[i]
		slots[i] = nil
		<-ahead
		consume(b)
	}
	wg.Wait()
}
