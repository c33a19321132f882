//go:build !unix

package node

import "errors"

// statDisk cannot read free space here: the store keeps nothing back.
func statDisk(string) (free, total int64, err error) {
	return 0, 0, errors.New("free disk space is not known on this system")
}
