package daemon

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"

	"github.com/xdprouter/xdprouter/control"
)

// The learned inputs (RAs, the delegated prefix, resolved remotes) are
// recorded next to the config in force, with their deadlines. A daemon
// started after a crash, kill -9 or an upgrade begins from them instead of
// from nothing: otherwise its first pass, before any RA has come, would
// remove the default route, the tunnel whose local address is the WAN
// address and the LAN prefix, and tell the LAN hosts to drop the router,
// all for the second it takes to hear the ISP again. Entries whose
// deadlines passed while no daemon ran are ignored by the plan as they
// would be in a running one.
func learnedFile(o Options) string {
	if o.StateFile == "" {
		return ""
	}
	return strings.TrimSuffix(o.StateFile, ".yaml") + ".learned.json"
}

// learnedRecorder writes the learned inputs in force after each pass,
// only when they changed.
type learnedRecorder struct {
	o    Options
	mu   sync.Mutex
	last []byte
}

func (r *learnedRecorder) save(l control.Learned) {
	path := learnedFile(r.o)
	if path == "" {
		return
	}
	data, err := json.Marshal(l)
	if err != nil {
		r.o.Log.Warn("cannot encode the learned inputs", "error", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if string(data) == string(r.last) {
		return
	}
	if err := writeAtomic(path, data); err != nil {
		r.o.Log.Warn("cannot record the learned inputs", "file", path, "error", err)
		return
	}
	r.last = data
}

// loadLearned returns what a previous daemon recorded, or nothing.
func loadLearned(o Options) control.Learned {
	var l control.Learned
	path := learnedFile(o)
	if path == "" {
		return l
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return l
	}
	if err == nil {
		err = json.Unmarshal(data, &l)
	}
	if err != nil {
		o.Log.Warn("ignoring the previous daemon's learned inputs", "file", path, "error", err)
		return control.Learned{}
	}
	o.Log.Info("starting from the learned inputs a previous daemon recorded", "file", path)
	return l
}

func removeLearned(o Options) {
	if path := learnedFile(o); path != "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			o.Log.Warn("cannot remove the record of the learned inputs", "file", path, "error", err)
		}
	}
}
