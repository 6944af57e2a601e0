package control

import (
	"fmt"
	"runtime/debug"
	"time"
)

// safePass is pass with a panic (a bug meeting input nobody foresaw: a
// learned prefix, a config) turned into a failed pass: logged with its
// stack, counted, the previous state left in force, and the reconciler
// still there for the next change, rather than the daemon gone. What the
// panicking pass had already changed on the system is not undone; the
// next pass brings it in line with its inputs.
func (r *Reconciler) safePass(next Inputs, why string) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		err = fmt.Errorf("panic: %v", p)
		r.log.Error("reconcile pass panicked; recovered, the previous state stays in force",
			"change", why, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		r.mu.Lock()
		r.stats.Passes++
		r.stats.Errors++
		r.stats.Panics++
		r.stats.LastError = fmt.Sprintf("%s: %v", why, err)
		r.stats.LastErrorTime = time.Now()
		st := r.stats
		r.mu.Unlock()
		if r.hooks.Pass != nil {
			r.hooks.Pass(st)
		}
	}()
	return r.pass(next, why)
}
