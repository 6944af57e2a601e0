package loader

import "fmt"

// Role is what an attached interface faces. Values come from the C enum.
type Role uint32

const (
	RoleNone = Role(routerXdprRoleXDPR_ROLE_NONE)
	RoleWAN  = Role(routerXdprRoleXDPR_ROLE_WAN)
	RoleLAN  = Role(routerXdprRoleXDPR_ROLE_LAN)
)

func (r Role) String() string {
	switch r {
	case RoleWAN:
		return "wan"
	case RoleLAN:
		return "lan"
	case RoleNone:
		return "none"
	}
	return fmt.Sprintf("role(%d)", uint32(r))
}

// ParseRole accepts "wan", "lan" or "none".
func ParseRole(s string) (Role, error) {
	for _, r := range []Role{RoleWAN, RoleLAN, RoleNone} {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want wan, lan or none)", s)
}

// Mode is how the XDP program is attached.
type Mode string

const (
	ModeAuto    Mode = "auto"    // native if the driver supports it, else generic
	ModeNative  Mode = "native"  // in the driver; fails if unsupported
	ModeGeneric Mode = "generic" // after skb allocation; works everywhere, slower
)

// ParseMode accepts "auto", "native" or "generic".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeNative, ModeGeneric:
		return m, nil
	}
	return "", fmt.Errorf("unknown XDP mode %q (want auto, native or generic)", s)
}

func modeName(m routerXdprXdpMode) string {
	switch m {
	case routerXdprXdpModeXDPR_MODE_NATIVE:
		return string(ModeNative)
	case routerXdprXdpModeXDPR_MODE_GENERIC:
		return string(ModeGeneric)
	}
	return "unknown"
}
