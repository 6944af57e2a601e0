package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/xdprouter/xdprouter/control/config"
)

// loadConfig reads and validates the config file, returning its bytes too
// (for the state file).
func loadConfig(path string) (*config.Config, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := config.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, raw, nil
}

// loadState returns the config a previous daemon recorded as in force, or
// nil. A record this version cannot read is ignored with a warning: then
// the new daemon cannot remove what only the old config had, which
// `xdprouter detach IFACE` still can.
func loadState(o Options) *config.Config {
	if o.StateFile == "" {
		return nil
	}
	raw, err := os.ReadFile(o.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		o.Log.Warn("cannot read the previous daemon's record of its config", "file", o.StateFile, "error", err)
		return nil
	}
	cfg, err := config.Parse(bytes.NewReader(raw))
	if err != nil {
		o.Log.Warn("ignoring the previous daemon's record of its config", "file", o.StateFile, "error", err)
		return nil
	}
	o.Log.Info("adopting the state a previous daemon left", "record", o.StateFile, "interfaces", cfg.Interfaces())
	return cfg
}

// saveState records raw as the config in force. It is written to a
// temporary file and renamed, so a crash leaves the old record or the new
// one, never half of one. Failing to write it is logged, not fatal: the
// router keeps routing.
func saveState(o Options, raw []byte) {
	if o.StateFile == "" {
		return
	}
	if err := writeAtomic(o.StateFile, raw); err != nil {
		o.Log.Warn("cannot record the config in force", "file", o.StateFile, "error", err)
	}
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func removeState(o Options) {
	if o.StateFile == "" {
		return
	}
	if err := os.Remove(o.StateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		o.Log.Warn("cannot remove the record of the config in force", "file", o.StateFile, "error", err)
	}
}
