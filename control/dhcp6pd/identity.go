package dhcp6pd

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// DUIDFile is the file in the state directory that holds the client's
// DUID, in hex. One DUID per machine (RFC 8415 section 11): every
// interface's client shares it.
const DUIDFile = "dhcpv6-duid"

// iaidFile holds the IAID of one interface's IA_PD, in hex.
func iaidFile(ifname string) string { return "dhcpv6-iaid-" + ifname }

// duidEpoch is the DUID-LLT time origin (RFC 8415 section 11.2).
var duidEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// identity is what a server recognises the client by: the ISP hands the
// same prefix back to the same DUID and IAID, so both survive restarts.
type identity struct {
	duid dhcpv6.DUID
	iaid [4]byte
}

// loadIdentity reads the DUID and IAID from dir, creating them on first
// use: DUID-LLT from the interface's MAC (a random DUID-UUID when it has
// none), IAID from a hash of the interface name.
func loadIdentity(dir, ifname string, mac net.HardwareAddr, now time.Time) (identity, error) {
	var id identity
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return id, fmt.Errorf("dhcpv6 state directory: %w", err)
	}
	raw, err := readHex(filepath.Join(dir, DUIDFile))
	switch {
	case err == nil:
		if id.duid, err = dhcpv6.DUIDFromBytes(raw); err != nil {
			return id, fmt.Errorf("%s: %w", filepath.Join(dir, DUIDFile), err)
		}
	case errors.Is(err, fs.ErrNotExist):
		id.duid = newDUID(mac, now)
		if err := writeHex(filepath.Join(dir, DUIDFile), id.duid.ToBytes()); err != nil {
			return id, err
		}
	default:
		return id, err
	}
	raw, err = readHex(filepath.Join(dir, iaidFile(ifname)))
	switch {
	case err == nil && len(raw) == 4:
		copy(id.iaid[:], raw)
	case err == nil:
		return id, fmt.Errorf("%s: IAID is %d bytes, want 4", filepath.Join(dir, iaidFile(ifname)), len(raw))
	case errors.Is(err, fs.ErrNotExist):
		h := fnv.New32a()
		h.Write([]byte(ifname))
		binary.BigEndian.PutUint32(id.iaid[:], h.Sum32())
		if err := writeHex(filepath.Join(dir, iaidFile(ifname)), id.iaid[:]); err != nil {
			return id, err
		}
	default:
		return id, err
	}
	return id, nil
}

func newDUID(mac net.HardwareAddr, now time.Time) dhcpv6.DUID {
	if len(mac) == 6 {
		return &dhcpv6.DUIDLLT{
			HWType:        iana.HWTypeEthernet,
			Time:          uint32(now.Sub(duidEpoch) / time.Second),
			LinkLayerAddr: append(net.HardwareAddr(nil), mac...),
		}
	}
	d := &dhcpv6.DUIDUUID{}
	_, _ = rand.Read(d.UUID[:])
	d.UUID[6] = d.UUID[6]&0x0f | 0x40 // version 4
	d.UUID[8] = d.UUID[8]&0x3f | 0x80 // RFC 4122 variant
	return d
}

func readHex(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// writeHex replaces path atomically (temp file, fsync, rename), mode 0600:
// a crash leaves the old content or the new, never a torn DUID.
func writeHex(path string, b []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.WriteString(hex.EncodeToString(b) + "\n"); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
