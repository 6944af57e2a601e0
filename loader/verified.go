package loader

import (
	"sync"

	"github.com/cilium/ebpf"
)

// verified remembers, for the life of this process, which program each
// pinned link (or clsact filter) was last found or made to run, and for what settings. The
// daemon reconciles on every Router Advertisement; loading and verifying
// the programs again only to learn that nothing changed would take a
// second per pass. The embedded object cannot change under a running
// process, so a link still running the program this process attached or
// adopted, with the same settings, is unchanged. Anything else (another
// version attached over it, the link gone, other settings) takes the
// full path.
var verified = struct {
	sync.Mutex
	links map[string]verifiedLink
}{links: map[string]verifiedLink{}}

type verifiedLink struct {
	prog     ebpf.ProgramID
	settings string
}

// remember records that the link pinned at pin runs its current program
// for settings.
func remember(pin, settings string) {
	prog, err := pinnedProgram(pin)
	if err != nil {
		return
	}
	verified.Lock()
	verified.links[pin] = verifiedLink{prog: prog, settings: settings}
	verified.Unlock()
}

// stillVerified says whether every link pinned at pins still runs the
// program remembered for it, for the same settings.
func stillVerified(settings string, pins ...string) bool {
	for _, pin := range pins {
		verified.Lock()
		v, ok := verified.links[pin]
		verified.Unlock()
		if !ok || v.settings != settings {
			return false
		}
		prog, err := pinnedProgram(pin)
		if err != nil || prog != v.prog {
			return false
		}
	}
	return true
}
