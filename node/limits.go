package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Limits caps what peers may take from the node. Zero fields keep
// libp2p's defaults, which scale with the machine's memory and file
// descriptors.
type Limits struct {
	// Conns caps connections, inbound and outbound together.
	Conns int
	// ConnsInbound caps connections that peers open to the node.
	ConnsInbound int
	// Streams caps streams over all connections.
	Streams int
	// Memory caps the bytes libp2p reserves for connections and streams.
	Memory int64
}

// resourceManager builds the libp2p resource manager enforcing l.
func (l Limits) resourceManager() (network.ResourceManager, error) {
	scaled := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaled)
	defaults := scaled.AutoScale()
	var partial rcmgr.PartialLimitConfig
	if l.Conns > 0 {
		partial.System.Conns = rcmgr.LimitVal(l.Conns)
	}
	if l.ConnsInbound > 0 {
		partial.System.ConnsInbound = rcmgr.LimitVal(l.ConnsInbound)
	}
	if l.Streams > 0 {
		partial.System.Streams = rcmgr.LimitVal(l.Streams)
	}
	if l.Memory > 0 {
		partial.System.Memory = rcmgr.LimitVal64(l.Memory)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(defaults)))
	if err != nil {
		return nil, fmt.Errorf("creating resource manager: %w", err)
	}
	return rm, nil
}
