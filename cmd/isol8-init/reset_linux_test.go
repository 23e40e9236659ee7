package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseSysVIPC(t *testing.T) {
	shm := `       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
      4660          3   666                  4096    12    12      0   100   101   100   101 1764094000 1764094000 1764094000                  4096                     0
         0          7   600             188743680    14    14      1   555   101   100   101          0          0 1764094000             188743680                     0
`
	objs, err := parseSysVIPC("shm", "shmid", []byte(shm))
	if err != nil {
		t.Fatal(err)
	}
	want := []ipcObject{{"shm", 3, 100}, {"shm", 7, 100}} // cuid, not the (changeable) uid
	if len(objs) != len(want) || objs[0] != want[0] || objs[1] != want[1] {
		t.Fatalf("parsed %+v, want %+v", objs, want)
	}
	if objs, err := parseSysVIPC("msg", "msqid", []byte("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n")); err != nil || len(objs) != 0 {
		t.Fatalf("empty table: %v %v", objs, err)
	}
	if _, err := parseSysVIPC("sem", "semid", []byte("garbage header\n1 2 3\n")); err == nil {
		t.Fatal("unexpected header accepted")
	}
}

// makeDev builds a fresh /dev in dir as runc does (needs root for mknod).
func makeDev(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mk := func(root string, nodes []devNode) {
		for _, n := range nodes {
			p := filepath.Join(root, n.name)
			var err error
			switch n.kind {
			case os.ModeSymlink:
				err = os.Symlink(n.target, p)
			case os.ModeDir:
				if err = os.Mkdir(p, 0); err == nil {
					err = os.Chmod(p, n.perm)
				}
			default:
				dev := int(n.major<<8 | n.minor)
				if err = syscall.Mknod(p, syscall.S_IFCHR, dev); err == nil {
					err = os.Chmod(p, n.perm)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(dir, expectedDev)
	mk(filepath.Join(dir, "pts"), expectedPts)
	return dir
}

func TestCheckDev(t *testing.T) {
	if err := checkDevAt(makeDev(t), 65534); err != nil {
		t.Fatalf("fresh /dev: %v", err)
	}
	tamper := []struct {
		name, want string
		do         func(dir string) error
	}{
		{"null replaced by a file", "want a character device", func(d string) error {
			os.Remove(filepath.Join(d, "null"))
			return os.WriteFile(filepath.Join(d, "null"), []byte("planted"), 0o666)
		}},
		{"extra node", "unexpected", func(d string) error {
			return syscall.Mknod(filepath.Join(d, "sda"), syscall.S_IFBLK|0o666, 8<<8)
		}},
		{"zero renumbered", "device 1:3", func(d string) error {
			os.Remove(filepath.Join(d, "zero"))
			return syscall.Mknod(filepath.Join(d, "zero"), syscall.S_IFCHR|0o666, 1<<8|3)
		}},
		{"mode", "mode", func(d string) error { return os.Chmod(filepath.Join(d, "urandom"), 0o777) }},
		{"owner", "owned by", func(d string) error { return os.Lchown(filepath.Join(d, "tty"), 100, 101) }},
		{"symlink retargeted", "points to", func(d string) error {
			os.Remove(filepath.Join(d, "stdin"))
			return os.Symlink("/sandbox/x", filepath.Join(d, "stdin"))
		}},
		{"missing", "missing", func(d string) error { return os.Remove(filepath.Join(d, "random")) }},
		{"pty left", "unexpected", func(d string) error {
			return syscall.Mknod(filepath.Join(d, "pts", "0"), syscall.S_IFCHR|0o620, 136<<8)
		}},
		{"dev writable", "mode", func(d string) error { return os.Chmod(d, 0o777) }},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			dir := makeDev(t)
			if err := tc.do(dir); err != nil {
				t.Fatal(err)
			}
			err := checkDevAt(dir, 65534)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkDevAt = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDevNumbers(t *testing.T) {
	for _, tc := range []struct{ maj, min uint32 }{{1, 3}, {5, 2}, {136, 0}, {259, 70000}} {
		d := uint64(tc.min&0xff) | uint64(tc.maj&0xfff)<<8 | uint64(tc.min&^0xff)<<12 | uint64(tc.maj&^0xfff)<<32
		if devMajor(d) != tc.maj || devMinor(d) != tc.min {
			t.Errorf("makedev(%d,%d) decodes to %d:%d", tc.maj, tc.min, devMajor(d), devMinor(d))
		}
	}
}

func TestNonZeroSockstat(t *testing.T) {
	clean := "sockets: used 0\nTCP: inuse 0 orphan 3 tw 0 alloc 41 mem 243\nUDP: inuse 0 mem 7\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 2 memory 9\n"
	if got := nonZeroSockstat(clean); len(got) != 0 {
		t.Fatalf("clean sockstat reported %v (host-wide counters must be ignored)", got)
	}
	busy := "sockets: used 4\nTCP: inuse 1 orphan 0 tw 2 alloc 1 mem 1\nUDP: inuse 0 mem 0\n"
	got := strings.Join(nonZeroSockstat(busy), ", ")
	if got != "sockets used 4, TCP inuse 1, TCP tw 2" {
		t.Fatalf("busy sockstat: %q", got)
	}
	if got := strings.Join(nonZeroSockstat("TCP6: inuse 0\nUDP6: inuse 1\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n"), ", "); got != "UDP6 inuse 1" {
		t.Fatalf("sockstat6: %q", got)
	}
}
