//go:build unix

package node

import "golang.org/x/sys/unix"

// statDisk returns the bytes free (to unprivileged users) and in all on
// the filesystem of dir.
func statDisk(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}
