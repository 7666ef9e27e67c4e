//go:build unix

package identity

import (
	"fmt"
	"os"
	"syscall"
)

// chownLike gives paths the owner and group of ref when running as root
// and ref belongs to another user: 'sudo outpost provision' then makes a
// key the agent's own user can read.
func chownLike(ref string, paths ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(ref)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, int(sys.Uid), int(sys.Gid)); err != nil {
			return fmt.Errorf("giving %s to the owner of %s: %w", p, ref, err)
		}
	}
	return nil
}
