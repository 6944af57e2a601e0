package daemon

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recTask records its runs; it fails the first failures runs.
type recTask struct {
	mu       sync.Mutex
	name     string
	runs     int
	failures int
	stopped  int
}

func (r *recTask) Run(ctx context.Context) error {
	r.mu.Lock()
	r.runs++
	fail := r.runs <= r.failures
	r.mu.Unlock()
	if fail {
		return errors.New("interface wan0 not found")
	}
	<-ctx.Done()
	r.mu.Lock()
	r.stopped++
	r.mu.Unlock()
	return nil
}

func (r *recTask) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs, r.stopped
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSupervisor(t *testing.T) {
	s := newSupervisor(quietLog)
	s.minBackoff, s.maxBackoff = time.Millisecond, 10*time.Millisecond
	made := map[string][]*recTask{}
	spec := func(name, key string, failures int) taskSpec {
		return taskSpec{name: name, key: key, new: func() task {
			r := &recTask{name: name, failures: failures}
			made[name] = append(made[name], r)
			return r
		}}
	}
	// Tasks set before Run start with it.
	s.Sync([]taskSpec{spec("wanra", "wan0", 2), spec("lanra", "lan0", 0)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// A failing task is started again until it runs, and its error shows.
	eventually(t, "wanra to run a third time", func() bool { runs, _ := made["wanra"][0].counts(); return runs == 3 })
	if e := s.Errors()["wanra"]; e != "interface wan0 not found" {
		t.Errorf("errors %v", s.Errors())
	}
	// Same key: left alone. New key: restarted. Gone: stopped.
	s.Sync([]taskSpec{spec("wanra", "wan0", 0), spec("dhcp6pd", "wan0/56", 0)})
	if len(made["wanra"]) != 1 {
		t.Errorf("wanra restarted though its key did not change")
	}
	if _, stopped := made["lanra"][0].counts(); stopped != 1 {
		t.Errorf("lanra not stopped when no longer wanted")
	}
	s.Sync([]taskSpec{spec("wanra", "wan1", 0), spec("dhcp6pd", "wan0/56", 0)})
	if len(made["wanra"]) != 2 {
		t.Fatalf("wanra not restarted for a new key")
	}
	if _, stopped := made["wanra"][0].counts(); stopped != 1 {
		t.Errorf("old wanra not stopped before the new one")
	}
	eventually(t, "the new wanra to run", func() bool { runs, _ := made["wanra"][1].counts(); return runs == 1 })
	if s.Task("wanra") != made["wanra"][1] || s.Task("lanra") != nil {
		t.Errorf("Task() does not return the running tasks")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wanra", "dhcp6pd"} {
		r := made[name][len(made[name])-1]
		if _, stopped := r.counts(); stopped != 1 {
			t.Errorf("%s not stopped at the end", name)
		}
	}
}
