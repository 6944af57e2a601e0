package control

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/xdprouter/xdprouter/control/config"
	"github.com/xdprouter/xdprouter/loader"
)

type fakeDP struct {
	attached map[string]loader.Role
	failOn   string
	log      []string
}

func (f *fakeDP) Attach(ifname string, role loader.Role, mode loader.Mode, gate loader.CTGate) (loader.AttachResult, error) {
	if ifname == f.failOn {
		return loader.AttachResult{}, errors.New("boom")
	}
	f.log = append(f.log, "attach "+ifname)
	action := "attached"
	if _, ok := f.attached[ifname]; ok {
		action = "unchanged"
	}
	f.attached[ifname] = role
	return loader.AttachResult{Interface: ifname, Role: role, Mode: string(mode), Action: action}, nil
}

func (f *fakeDP) Detach(ifname string) error {
	f.log = append(f.log, "detach "+ifname)
	delete(f.attached, ifname)
	return nil
}

type fakeAddrs struct {
	have   map[string]bool
	failOn string
}

func (f *fakeAddrs) Ensure(ifname string, p netip.Prefix) (bool, error) {
	k := ifname + " " + p.String()
	if ifname == f.failOn {
		return false, errors.New("no such thing")
	}
	if f.have[k] {
		return false, nil
	}
	f.have[k] = true
	return true, nil
}

func (f *fakeAddrs) Remove(ifname string, p netip.Prefix) error {
	delete(f.have, ifname+" "+p.String())
	return nil
}

func parse(t *testing.T, y string) *config.Config {
	t.Helper()
	c, err := config.Parse(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const twoLANs = `
wan: {interface: w0}
lan:
  - {interface: l1, sla-id: 1, ipv4: 192.168.1.1/24}
  - {interface: l2, sla-id: 2, ipv4: 192.168.2.1/24}
`

func TestApplyIdempotent(t *testing.T) {
	dp := &fakeDP{attached: map[string]loader.Role{}}
	addrs := &fakeAddrs{have: map[string]bool{}}
	cfg := parse(t, twoLANs)
	steps, err := Apply(cfg, Deps{DP: dp, Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]loader.Role{"w0": loader.RoleWAN, "l1": loader.RoleLAN, "l2": loader.RoleLAN}
	if !reflect.DeepEqual(dp.attached, want) {
		t.Errorf("attached = %v, want %v", dp.attached, want)
	}
	if len(addrs.have) != 2 || len(steps) != 5 {
		t.Errorf("addrs %v, steps %v", addrs.have, steps)
	}
	steps, err = Apply(cfg, Deps{DP: dp, Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Result != "unchanged" && s.Result != "present" {
			t.Errorf("second apply changed something: %+v", s)
		}
	}
}

// A failure part-way must undo exactly what this apply added.
func TestApplyRollsBack(t *testing.T) {
	for _, tc := range []struct{ failAttach, failAddr string }{
		{failAttach: "l2"},
		{failAddr: "l2"},
		{failAttach: "w0"},
	} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			dp := &fakeDP{attached: map[string]loader.Role{"l1": loader.RoleLAN}, failOn: tc.failAttach}
			addrs := &fakeAddrs{have: map[string]bool{}, failOn: tc.failAddr}
			_, err := Apply(parse(t, twoLANs), Deps{DP: dp, Addrs: addrs})
			if err == nil {
				t.Fatal("apply succeeded")
			}
			if tc.failAddr != "" && !strings.Contains(err.Error(), "lan[1].ipv4") {
				t.Errorf("error %q does not name lan[1].ipv4", err)
			}
			if tc.failAttach == "l2" && !strings.Contains(err.Error(), "lan[1]: boom") {
				t.Errorf("error %q does not name lan[1]", err)
			}
			// l1 was attached before this apply and stays; w0 and l2 are gone.
			if want := map[string]loader.Role{"l1": loader.RoleLAN}; !reflect.DeepEqual(dp.attached, want) {
				t.Errorf("after rollback attached = %v (log %v)", dp.attached, dp.log)
			}
			if len(addrs.have) != 0 {
				t.Errorf("after rollback addresses = %v", addrs.have)
			}
		})
	}
}
