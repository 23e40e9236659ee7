//go:build !linux

package containerd

import "errors"

// Network namespaces are Linux's; containerd sandboxes run on Linux only.
func checkNetNS(p string) error { return errors.New("network namespaces: need Linux") }

func checkNetNSOwner(netnsPath, usernsPath string) error {
	return errors.New("network namespaces: need Linux")
}

func pinNetNS(id string, pid uint32) (string, error) {
	return "", errors.New("network namespaces: need Linux")
}

func sharedDir(dir string) error { return errors.New("network namespaces: need Linux") }

func unpinNetNS(id string) error { return nil }

func netnsPins() ([]string, error) { return nil, nil }
