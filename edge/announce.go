package edge

import (
	"context"
	"time"

	"github.com/pacman-cdn/pacman/names"
	"go.uber.org/zap"
)

// announceInterval is how often records kept are looked at for ones to
// announce; every record is announced again each republishInterval, as
// DHT records expire (after 48h, by default).
const (
	announceInterval  = time.Minute
	republishInterval = 4 * time.Hour
)

// announceNames announces the IPNS records kept through routing: all of
// them at start and every republishInterval, and in between each one kept
// or published (by 'caddy pacman name publish', say) since the last pass.
func announceNames(ctx context.Context, n *names.Network, log *zap.Logger) {
	var lastAll time.Time
	tick := time.NewTicker(announceInterval)
	defer tick.Stop()
	for {
		all := time.Since(lastAll) >= republishInterval
		if all {
			lastAll = time.Now()
		}
		told, err := n.Announce(ctx, all)
		if err != nil && ctx.Err() == nil {
			log.Warn("announcing IPNS records", zap.Error(err))
		}
		if told > 0 {
			log.Debug("announced IPNS records", zap.Int("records", told))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
