package daemon

import (
	"log/slog"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// Notifier tells the service manager about the daemon's state, in the
// sd_notify protocol ("READY=1", "STATUS=...", "RELOADING=1",
// "STOPPING=1").
type Notifier interface {
	Notify(state string)
}

// Systemd notifies systemd when NOTIFY_SOCKET is set (Type=notify) and
// does nothing otherwise.
type Systemd struct{ Log *slog.Logger }

// Notify sends state; a failure is logged, never fatal: the router must
// keep routing when the service manager is unreachable.
func (s Systemd) Notify(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		s.Log.Warn("sd_notify", "state", state, "error", err)
	}
}
