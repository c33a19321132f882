package gateway

import "time"

// Observer learns what the handler does, for metrics. Its methods are
// called on request goroutines and must be quick.
type Observer interface {
	// FirstByte reports the time from a request's arrival to the first
	// byte of its body.
	FirstByte(d time.Duration)
	// Stalled reports a stream cut short because no source delivered a
	// leaf within the stall timeout.
	Stalled()
	// LeavesInFlight adds delta to the number of leaves being fetched.
	LeavesInFlight(delta int)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) FirstByte(time.Duration) {}
func (nopObserver) Stalled()                {}
func (nopObserver) LeavesInFlight(int)      {}
