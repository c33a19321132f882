package gateway

import (
	"time"

	"github.com/pacman-cdn/pacman/stream"
)

// Observer learns what the handler does, for metrics. Its methods are
// called on request goroutines and must be quick.
type Observer interface {
	// FirstByte reports the time from a request's arrival to the first
	// byte of its body.
	FirstByte(d time.Duration)
	// Stalled and LeavesInFlight report what streams do.
	stream.Observer
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) FirstByte(time.Duration) {}
func (nopObserver) Stalled()                {}
func (nopObserver) LeavesInFlight(int)      {}
